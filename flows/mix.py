"""The deployment `selfinstruct/mix`: a thin shell over `selfinstruct.mix`, served beside `selfinstruct/grow`, so
a nightly grow can be followed by a mix of its run directory with conversions and other runs.

    python flows/mix.py --config mix.toml      # serve grow (nightly 01:00) and mix (nightly 03:00) together
    prefect deployment run selfinstruct/mix --param config=mix.toml --param out=outputs/mix

See docs/datasets.md.
"""

# No `from __future__ import annotations`: Prefect builds its parameter model from the real annotations.
import argparse
import os
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, serve, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.schedules import Cron

from selfinstruct.artifacts import artifact_key
from selfinstruct.mix import MixResult, mix_run, read_mix_config

MIX_NIGHTLY = "0 3 * * *"  # two hours after grow's 01:00


@task(name="mix-sources", cache_policy=NONE)
def mix_sources(config: Path, out: Path) -> MixResult:
    """Read the mix config, mix its sources into `out` (store, exports, card, removed.jsonl)."""
    return mix_run(read_mix_config(config), out)


@task(name="mixture-artifacts", cache_policy=NONE)
def publish_mixture(result: MixResult) -> None:
    """The mixture table and the card, as artifacts of the flow run (views of the run directory)."""
    table = [{"source": line.label, "available": line.available, "dedup": line.dedup,
              "decontaminated": line.decontaminated, "rate": round(line.rate, 3),
              "target share": round(line.target_share, 4), "actual share": round(result.actual_share(line), 4),
              "taken": line.taken} for line in result.lines]
    create_table_artifact(table, key=artifact_key(result.out, "mixture"),
                          description=f"Mixture of {result.out}: {len(result.rows)} rows")
    create_markdown_artifact((result.out / "README.md").read_text(encoding="utf-8"),
                             key=artifact_key(result.out, "card"), description=f"Dataset card of {result.out}")


@flow(name="selfinstruct", flow_run_name="mix {config} into {out}")
def mix(config: Path, out: Path = Path("outputs/mix")) -> dict[str, Any]:
    """Mix the sources of the TOML file `config` into the run directory `out` (an earlier mix there is
    replaced only when the new one is complete)."""
    logger = get_run_logger()
    result = mix_sources(config, out)
    for line in result.table_lines():
        logger.info("%s", line)
    publish_mixture(result)
    return {"out": str(out), "rows": len(result.rows), "removed": len(result.removed)}


def serve_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve selfinstruct/mix beside selfinstruct/grow.")
    parser.add_argument("--config", default=os.environ.get("SELFINSTRUCT_MIX_CONFIG", "mix.toml"),
                        help="default mix config of a run (env SELFINSTRUCT_MIX_CONFIG, default mix.toml)")
    parser.add_argument("--out", default=os.environ.get("SELFINSTRUCT_MIX_OUT", "outputs/mix"),
                        help="default run directory of the mix (env SELFINSTRUCT_MIX_OUT)")
    parser.add_argument("--timezone", default=os.environ.get("SELFINSTRUCT_TIMEZONE", "UTC"),
                        help="IANA timezone of both schedules (env SELFINSTRUCT_TIMEZONE, default UTC)")
    parser.add_argument("--cron", default=os.environ.get("SELFINSTRUCT_MIX_CRON", MIX_NIGHTLY),
                        help=f"schedule of the mix (env SELFINSTRUCT_MIX_CRON, default {MIX_NIGHTLY!r})")
    parser.add_argument("--grow-out", default=os.environ.get("SELFINSTRUCT_OUT", "outputs/nightly"),
                        help="default run directory of the grow deployment served beside (env SELFINSTRUCT_OUT)")
    parser.add_argument("--no-grow", action="store_true", help="serve the mix deployment alone")
    return parser.parse_args()


def main() -> None:
    options = serve_options()
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "selfinstruct")
    deployments = [mix.to_deployment(
        name="mix", schedules=[Cron(options.cron, timezone=options.timezone)],
        parameters={"config": options.config, "out": options.out}, tags=["selfinstruct"],
        description="Mix grow runs and conversions into one trainer-ready set (rates, dedup, decontamination).",
    )]
    if not options.no_grow:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import grow as grow_flow  # flows/grow.py, beside this file

        deployments.append(grow_flow.grow.to_deployment(
            name="grow", schedules=[Cron(grow_flow.NIGHTLY, timezone=options.timezone)],
            parameters={"out": options.grow_out}, tags=["selfinstruct"],
            description="Grow the instruction pool nightly; each run continues the run directory's store.",
        ))
    # pause_on_shutdown=False: stopping this process leaves both schedules on (as flows/grow.py does).
    serve(*deployments, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
