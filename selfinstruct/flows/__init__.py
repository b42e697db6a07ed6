"""The project's Prefect flows and the deployments `selfinstruct serve` serves.

Each module here defines its flow and a `deployment(timezone, cron, parameters)`; a new flow joins the served
set with one line in DEPLOYMENTS. The flows live inside the package so a served deployment runs from an
installed wheel, without a checkout (`flows/*.py` at the repository root are entries for `prefect deploy`).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError

NIGHTLY = "0 1 * * *"

# Deployment name -> module holding its flow and `deployment(...)`.
DEPLOYMENTS: dict[str, str] = {
    "grow": "selfinstruct.flows.grow",
}


def build_deployments(timezone: str, cron: str, parameters: dict[str, dict[str, Any]]) -> list[Any]:
    """Every deployment in DEPLOYMENTS, with its default parameters from `parameters[name]`."""
    from prefect.exceptions import ParameterTypeError, SignatureMismatchError

    unknown = sorted(set(parameters) - set(DEPLOYMENTS))
    if unknown:
        raise ConfigError("--param", unknown[0], f"a deployment name: one of {', '.join(DEPLOYMENTS)}")
    built = []
    for name, module in DEPLOYMENTS.items():
        try:
            built.append(importlib.import_module(module).deployment(timezone, cron, parameters.get(name, {})))
        except (ParameterTypeError, SignatureMismatchError) as err:
            raise ConfigError("--param", name, "parameters of its flow", str(err).splitlines()[0]) from None
    return built
