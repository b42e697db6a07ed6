"""The Prefect flow `selfinstruct` and its deployment `grow`: a thin shell over `selfinstruct.pipeline`.

Tasks of pipelined rounds, a few minutes each (the library commits each round in one transaction, in order, so
a retried or re-run task never duplicates work, and the teacher is kept as busy as by the CLI); every run re-opens
the run directory's store and continues from it. Teacher concurrency is the library's asyncio limit
(`concurrency`), not a Prefect concurrency limit.

    python flows/grow.py                       # serve: nightly at 01:00 (SELFINSTRUCT_TIMEZONE, default UTC)
    prefect deployment run selfinstruct/grow --param target=500 --param out=outputs/nightly

See docs/prefect.md.
"""

# No `from __future__ import annotations`: Prefect builds its parameter model from the real annotations, and
# string annotations cannot be resolved when a worker loads this file from its entrypoint.
import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact,
)
from prefect.cache_policies import NONE
from prefect.schedules import Cron

from selfinstruct.artifacts import (
    artifact_key, drops_text, progress_description, progress_percent, rounds_table, summary_markdown,
)
from selfinstruct.config import Api, Backend, FilterConfig, GrowConfig, build_config
from selfinstruct.export import export_alpaca
from selfinstruct.pipeline import GrowResult, GrowSession, RoundSummary
from selfinstruct.records import Method
from selfinstruct.teacher.registry import Endpoints, open_teacher

DEFAULTS = GrowConfig()  # parameter defaults shown in the UI come from the library's config, not from here
NIGHTLY = "0 1 * * *"


# A task starts rounds for this long, then lets the rounds in flight finish: pipelined like the CLI (a task per
# round would leave the teacher idle between rounds, and sub-second rounds would make thousands of task runs).
TASK_SECONDS = 300.0


# The session and the endpoints live in this process and cannot be hashed or pickled: no task caching.
# A retry continues after the last committed round; the store's request cache keeps answers from being paid twice.
@task(name="grow-rounds", retries=2, retry_delay_seconds=10, cache_policy=NONE)
def grow_rounds(session: GrowSession, endpoints: Endpoints, summaries: list[RoundSummary],
                on_round: Callable[[RoundSummary], None]) -> int:
    """Pipelined rounds for up to TASK_SECONDS, each committed as it completes and appended to `summaries`."""
    def committed(summary: RoundSummary) -> None:
        summaries.append(summary)
        on_round(summary)

    return session.run_rounds(endpoints, committed, until=time.monotonic() + TASK_SECONDS,
                              rounds_before=len(summaries))


@task(name="export-alpaca", cache_policy=NONE)
def export_pool(session: GrowSession) -> Path:
    """alpaca_data.json from the store (also when the target was already reached and no round ran)."""
    return export_alpaca(session.store, session.run_dir)


@task(name="quality-report", cache_policy=NONE)
def quality_report(run_dir: Path, fail_on_gates: bool) -> Path:
    """report/report.html and its summary as an artifact; failed quality gates fail the run if asked."""
    from selfinstruct.gates import enforce_gates
    from selfinstruct.report import build_report, report_markdown  # matplotlib loads only here

    result = build_report(run_dir)
    create_markdown_artifact(
        report_markdown(run_dir), key=artifact_key(run_dir, "report"),
        description=f"Quality report of {run_dir}: diversity, drops, gates ({result.path})",
    )
    if fail_on_gates:
        enforce_gates(result.gates)
    return result.path


@flow(name="selfinstruct", flow_run_name="grow {out} to {target}")
def grow(
    target: int = DEFAULTS.target,
    out: Path = DEFAULTS.out,
    backend: Backend = DEFAULTS.backend,
    model: str | None = None,
    base_url: list[str] | None = None,
    api: Api | None = None,
    method: Method = DEFAULTS.method,
    seeds: Path | None = None,
    seed: int = DEFAULTS.seed,
    prompts_per_round: int | None = None,
    concurrency: int | None = None,
    batch_prompts: int | None = None,
    max_rounds: int | None = None,
    filters: FilterConfig | None = None,
    fail_on_gates: bool = False,
) -> GrowResult:
    """Grow the pool in `out` to `target` accepted examples; a later run continues the same pool.

    Parameters are the flags of `selfinstruct grow`; `None` means the library's default (the bundled seeds,
    the backend's default model, concurrency, prompts per round and per request, no round limit, the default filters).
    """
    logger = get_run_logger()
    given = {
        "target": target, "out": out, "backend": backend, "model": model, "base_url": base_url, "api": api,
        "method": method, "seeds": seeds, "seed": seed, "prompts_per_round": prompts_per_round,
        "concurrency": concurrency, "batch_prompts": batch_prompts, "max_rounds": max_rounds, "filters": filters,
    }
    config = build_config(given, "flow parameters")
    with GrowSession(config) as session:
        logger.info("%s: %d / %d accepted", config.out, session.accepted, config.target)
        progress = create_progress_artifact(
            progress_percent(session.accepted, config.target), key=artifact_key(config.out, "progress"),
            description=progress_description(session.accepted, config.target, config.out),
        )
        summaries: list[RoundSummary] = []

        def report_round(summary: RoundSummary) -> None:
            logger.info("round %d: kept %d of %d, %d / %d accepted, dropped %s", summary.round, summary.kept,
                        summary.generated, summary.accepted_total, config.target, drops_text(summary.dropped))
            update_progress_artifact(
                progress, progress_percent(summary.accepted_total, config.target),
                description=progress_description(summary.accepted_total, config.target, config.out),
            )

        try:
            if not session.done():
                with open_teacher(config, session.run_dir) as endpoints:
                    while session.wants_round(len(summaries)):
                        grow_rounds(session, endpoints, summaries, report_round)
        except BaseException:  # also on cancellation (SIGTERM): the file shows every committed round
            export_alpaca(session.store, session.run_dir)
            raise
        alpaca_path = export_pool(session)
        publish_report(session, summaries, alpaca_path)
        result = GrowResult(session.accepted, config.target, len(summaries), alpaca_path, session.store.drop_counts())
    quality_report(config.out, fail_on_gates)
    return result


def publish_report(session: GrowSession, summaries: list[RoundSummary], alpaca_path: Path) -> None:
    """The table of every round in the store and this run's summary, as artifacts of the flow run."""
    out, all_rounds = session.run_dir, session.store.round_stats()
    create_table_artifact(
        rounds_table(all_rounds), key=artifact_key(out, "rounds"),
        description=f"Per-round counts of {out} (every round in its store)",
    )
    create_markdown_artifact(
        summary_markdown(
            accepted=session.accepted, target=session.config.target,
            run_rounds=[summary.as_stats() for summary in summaries], total_rounds=len(all_rounds),
            total_drops=session.store.drop_counts(),
            outputs={"Alpaca data": alpaca_path, "store": session.store.path, "run directory": out},
        ),
        key=artifact_key(out, "summary"), description=f"Summary of this run of {out}",
    )


def serve_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the selfinstruct/grow deployment on a nightly schedule.")
    parser.add_argument("--timezone", default=os.environ.get("SELFINSTRUCT_TIMEZONE", "UTC"),
                        help="IANA timezone of the schedule (env SELFINSTRUCT_TIMEZONE, default UTC)")
    parser.add_argument("--cron", default=os.environ.get("SELFINSTRUCT_CRON", NIGHTLY),
                        help=f"schedule (env SELFINSTRUCT_CRON, default {NIGHTLY!r}: 01:00 every night)")
    parser.add_argument("--target", type=int, default=int(os.environ.get("SELFINSTRUCT_TARGET", DEFAULTS.target)),
                        help="default target of a run (env SELFINSTRUCT_TARGET)")
    parser.add_argument("--out", default=os.environ.get("SELFINSTRUCT_OUT", "outputs/nightly"),
                        help="default run directory (env SELFINSTRUCT_OUT, default outputs/nightly)")
    parser.add_argument("--params", type=json.loads, default={},
                        help='more default parameters as JSON, e.g. \'{"backend": "openai", "model": "gpt-4o-mini"}\'')
    parser.add_argument("--limit", type=int, default=1,
                        help="flow runs at once in this process (one run directory is grown by one run at a time)")
    return parser.parse_args()


def main() -> None:
    options = serve_options()
    # The library's warnings (dead-lettered requests) go to the run's log in the UI; the runner's flow-run
    # subprocesses inherit this.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "selfinstruct")
    grow.serve(
        name="grow",
        schedules=[Cron(options.cron, timezone=options.timezone)],
        parameters={"target": options.target, "out": options.out, **options.params},
        description="Grow the instruction pool nightly; each run continues the run directory's store.",
        tags=["selfinstruct"],
        limit=options.limit,
        # The default (True) pauses the schedule and deletes its scheduled runs when this process stops.
        pause_on_shutdown=False,
    )


if __name__ == "__main__":
    main()
