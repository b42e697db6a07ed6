"""The Prefect flow `selfinstruct` and its deployment `grow`: a thin shell over `selfinstruct.generate.pipeline`.

Tasks of pipelined rounds, a few minutes each (the library commits each round in one transaction, in order, so
a retried or re-run task never duplicates work, and the teacher is kept as busy as by the CLI); every run re-opens
the run directory's store and continues from it. Teacher concurrency is the library's asyncio limit
(`concurrency`), not a Prefect concurrency limit.

The flow takes the same configuration as `selfinstruct grow`: a `config_file`, the common settings as named
parameters, and any other setting in `settings` (dotted paths or nested tables), all derived from `GrowConfig`.

    selfinstruct serve                         # serves every deployment: grow nightly at 01:00 UTC
    prefect deployment run selfinstruct/grow --param target=500 --param out=outputs/nightly

See docs/prefect.md.
"""

# No `from __future__ import annotations`: Prefect builds its parameter model from the real annotations.
import inspect
import time
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact,
)
from prefect.cache_policies import NONE
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.runtime import flow_run
from prefect.schedules import Cron

from .artifacts import artifact_key, drops_text, progress_description, progress_percent, rounds_table, summary_markdown
from ..core.config import GrowConfig
from ..core.config_overrides import common_specs, resolve_config
from ..core.errors import ConfigError
from ..export.formats import export_alpaca
from ..grow import GrowResult, judge as judge_run
from ..judge.run import JudgeResult
from ..generate.pipeline import GrowSession, RoundSummary
from ..teacher.backend import Endpoints
from ..teacher.registry import open_teacher

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


@task(name="judge-rows", cache_policy=NONE)
def judge_rows(config: GrowConfig) -> JudgeResult:
    """The judge's scores of the rows it has not scored (judge.enabled); resumable like the grow's rounds."""
    result = judge_run(config)
    get_run_logger().info("%s: judge %s (%s) scored %d rows, %d unjudged, %d failed; %d without a score%s",
                          config.out, result.judge_model, result.rubric_version, result.scored, result.unjudged,
                          result.failed, result.left, f"; {result.stopped}" if result.stopped else "")
    return result


@task(name="quality-report", cache_policy=NONE)
def quality_report(run_dir: Path, fail_on_gates: bool) -> Path:
    """report/report.html and its summary as an artifact; failed quality gates fail the run if asked."""
    from ..report.gates import enforce_gates
    from ..report.html import build_report, report_markdown

    result = build_report(run_dir)
    create_markdown_artifact(
        report_markdown(run_dir), key=artifact_key(run_dir, "report"),
        description=f"Quality report of {run_dir}: diversity, drops, gates ({result.path})",
    )
    if fail_on_gates:
        enforce_gates(result.gates)
    return result.path


def _grow(**parameters: Any) -> GrowResult:
    """Grow the pool in `out` to `target` accepted examples; a later run continues the same pool."""
    config = flow_config(parameters)
    fail_on_gates = bool(parameters.get("fail_on_gates"))
    logger = get_run_logger()
    with GrowSession(config, publish=export_alpaca) as session:
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
        store = session.store
        result = GrowResult(session.accepted, config.target, len(summaries), alpaca_path, store.drop_counts(),
                            session.stopped, session.usage, session.ledger.spent(), store.dead_letter_counts())
        logger.info("%s: %d / %d accepted; %s", config.out, result.accepted, config.target,
                    result.stopped or "stopped")
    if config.judge.enabled:  # after the grow's teacher is stopped, as `grow --judge` does (see grow.grow)
        result = replace(result, judged=judge_rows(config))
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


# Parameters beside the settings: where they come from and what they do, for the signature and the UI.
EXTRA_PARAMETERS: list[tuple[str, Any, Any, str]] = [
    ("config_file", Optional[Path], None, "TOML or JSON file of grow settings; the parameters above override it"),
    ("settings", Optional[dict[str, Any]], None,
     'any other setting by dotted path or as a table, e.g. {"filters.min_words": 5, "max_cost": 2.0}'),
    ("fail_on_gates", bool, False, "fail the run when a quality gate fails"),
]
# Parameters of earlier versions: each fails with a one-line hint to its new spelling.
OLD_PARAMETERS = {"filters": 'settings={"filters": {...}}'}


def flow_parameters() -> list[inspect.Parameter]:
    """The flow's parameters: each common setting of GrowConfig (None: the config file's or the default), then
    config_file, settings and fail_on_gates."""
    specs = [(spec.name, Optional[spec.kind], None) for spec in common_specs()]
    specs += [(name, kind, default) for name, kind, default, _ in EXTRA_PARAMETERS]
    specs += [(name, Optional[Any], None) for name in OLD_PARAMETERS]
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
            for name, kind, default in specs]


def flow_config(parameters: dict[str, Any]) -> GrowConfig:
    """The GrowConfig a flow run's parameters mean: config file, then named settings, then `settings`."""
    for old, new in OLD_PARAMETERS.items():
        if parameters.get(old) is not None:
            raise ConfigError("flow parameters", old, f"{new} instead ({old} was renamed)")
    named = {spec.name: parameters.get(spec.name) for spec in common_specs()}
    return resolve_config(
        parameters.get("config_file"), named, parameters.get("settings") or {},
        named_where=lambda name: f"flow parameter {name}",
        settings_where=lambda path: f"flow parameter settings[{path!r}]",
    )


def _docstring() -> str:
    # Prefect shows each parameter's description from the docstring's Args section.
    lines = [_grow.__doc__ or "", "", "Args:"]
    lines += [f"    {spec.name}: {spec.description}" for spec in common_specs()]
    lines += [f"    {name}: {description}" for name, _, _, description in EXTRA_PARAMETERS]
    lines += [f"    {name}: renamed: use {new}" for name, new in OLD_PARAMETERS.items()]
    return "\n".join(lines)


def _run_name() -> str:
    parameters = flow_run.parameters
    return f"grow {parameters.get('out') or 'the configured run'} to {parameters.get('target') or 'its target'}"


# The signature is derived from GrowConfig, so a new setting needs no code here (Prefect reads the signature).
_grow.__signature__ = inspect.Signature(flow_parameters(), return_annotation=GrowResult)  # type: ignore[attr-defined]
_grow.__annotations__ = {param.name: param.annotation for param in flow_parameters()} | {"return": GrowResult}
_grow.__doc__ = _docstring()
_grow.__name__ = _grow.__qualname__ = "grow"  # the deployment's entrypoint is selfinstruct.flows.grow.grow
grow: Flow[..., GrowResult] = flow(name="selfinstruct", flow_run_name=_run_name)(_grow)


def deployment(timezone: str, cron: Optional[str], parameters: dict[str, Any]) -> RunnerDeployment:
    """The `grow` deployment: nightly at 01:00 unless `cron` says otherwise, continuing the run directory's
    store (outputs/nightly unless given)."""
    grow.validate_parameters(parameters)
    return grow.to_deployment(
        name="grow",
        schedules=[Cron(cron or NIGHTLY, timezone=timezone)],
        parameters={"out": "outputs/nightly", **parameters},
        description="Grow the instruction pool nightly; each run continues the run directory's store.",
        tags=["selfinstruct"],
        # By module, so a served deployment runs from an installed package, with no checkout.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
