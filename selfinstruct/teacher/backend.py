"""What a backend provides: endpoints to send requests to (starting a server if it must)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager

from ..core.config import GrowConfig
from .server import served_model


@dataclass(frozen=True)
class Endpoints:
    """Where to send requests, for which model, with which key (never printed)."""

    base_urls: list[str]
    model: str
    api_key: str = field(default="not-needed", repr=False)


Backend = Callable[[GrowConfig, Path], ContextManager[Endpoints]]


def attach(config: GrowConfig, api_key: str = "not-needed") -> Endpoints:
    """Endpoints of servers someone else runs (--base-url): --model, else the model they list at /models."""
    model = config.model or served_model(config.base_url, api_key, config.request_timeout)
    return Endpoints(base_urls=config.base_url, model=model, api_key=api_key)
