"""The Prefect flow of the deployment `selfinstruct/mix`: a thin shell over `selfinstruct.mix`, served beside
`selfinstruct/grow` (`selfinstruct serve`), so a nightly grow can be followed by a mix of its run directory with
conversions and other runs.

    selfinstruct serve --param mix.config=mix.toml     # grow nightly at 01:00, mix at 03:00
    prefect deployment run selfinstruct/mix --param config=mix.toml --param out=outputs/mix

See docs/datasets.md.
"""

# No `from __future__ import annotations`: Prefect builds its parameter model from the real annotations.
from pathlib import Path
from typing import Any, Optional

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from .artifacts import artifact_key
from ..mix import MixResult, mix_run, read_mix_config

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


def deployment(timezone: str, cron: Optional[str], parameters: dict[str, Any]) -> RunnerDeployment:
    """The `mix` deployment: nightly at 03:00 (after grow's 01:00) unless `cron` says otherwise."""
    defaults = {"config": "mix.toml", "out": "outputs/mix", **parameters}
    mix.validate_parameters(defaults)
    return mix.to_deployment(
        name="mix", schedules=[Cron(cron or MIX_NIGHTLY, timezone=timezone)], parameters=defaults,
        tags=["selfinstruct"],
        description="Mix grow runs and conversions into one trainer-ready set (rates, dedup, decontamination).",
        # By module, so a served deployment runs from an installed package, with no checkout.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
