"""The project's Prefect flows and the deployments `selfinstruct serve` serves.

Each module here defines its flow and a `deployment(timezone, cron, parameters)` (cron None: its own schedule);
a new flow joins the served set with one line in DEPLOYMENTS. The flows live inside the package so a served deployment runs from an
installed wheel, without a checkout (`flows/*.py` at the repository root are entries for `prefect deploy`).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..core.errors import ConfigError

# Deployment name -> module holding its flow and `deployment(...)`.
DEPLOYMENTS: dict[str, str] = {
    "grow": "selfinstruct.flows.grow",
    "mix": "selfinstruct.flows.mix",
}


def build_deployments(timezone: str, crons: dict[str, str], parameters: dict[str, dict[str, Any]],
                      names: list[str] | None = None) -> list[Any]:
    """The deployments `names` (default: all of DEPLOYMENTS), each with its schedule from `crons[name]` (else its
    own) and its default parameters from `parameters[name]`."""
    from prefect.exceptions import ParameterTypeError, SignatureMismatchError

    for flag, given in (("--param", parameters), ("--cron", crons), ("--deployment", names or [])):
        unknown = sorted(set(given) - set(DEPLOYMENTS))
        if unknown:
            raise ConfigError(flag, unknown[0], f"a deployment name: one of {', '.join(DEPLOYMENTS)}")
    built = []
    for name, module in DEPLOYMENTS.items():
        if names and name not in names:
            continue
        try:
            built.append(importlib.import_module(module).deployment(timezone, crons.get(name),
                                                                    parameters.get(name, {})))
        except (ParameterTypeError, SignatureMismatchError) as err:
            raise ConfigError("--param", name, "parameters of its flow", str(err).splitlines()[0]) from None
    return built


def serve_deployments(deployments: list[Any], limit: int | None = 1) -> None:
    """Serve `deployments` from this process until it is stopped."""
    import os

    from prefect import serve

    # The library's warnings (dead-lettered requests) go to the run's log; flow-run subprocesses inherit it.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "selfinstruct")
    # pause_on_shutdown=False: the default pauses the schedules and deletes scheduled runs when this stops.
    serve(*deployments, limit=limit, pause_on_shutdown=False)
