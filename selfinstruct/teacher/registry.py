"""Backends by name. A backend only provides endpoints (starting a server if it must)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager

from ..config import GrowConfig
from ..errors import ConfigError
from .server import served_model


@dataclass(frozen=True)
class Endpoints:
    """Where to send requests, for which model, with which key (never printed)."""

    base_urls: list[str]
    model: str
    api_key: str = field(default="not-needed", repr=False)


Backend = Callable[[GrowConfig, Path], ContextManager[Endpoints]]
BACKENDS: dict[str, Backend] = {}


def attach(config: GrowConfig, api_key: str = "not-needed") -> Endpoints:
    """Endpoints of servers someone else runs (--base-url): --model, else the model they list at /models."""
    model = config.model or served_model(config.base_url, api_key, config.request_timeout)
    return Endpoints(base_urls=config.base_url, model=model, api_key=api_key)


def register(name: str) -> Callable[[Backend], Backend]:
    def add(backend: Backend) -> Backend:
        BACKENDS[name] = backend
        return backend

    return add


@contextlib.contextmanager
def open_teacher(config: GrowConfig, run_dir: Path) -> Iterator[Endpoints]:
    """Endpoints of the configured backend, for as long as the `with` block runs."""
    from . import llamacpp, openai_api, vllm  # noqa: F401  (each registers itself)

    backend = BACKENDS.get(config.backend)
    if backend is None:
        raise ConfigError("--backend", "backend", f"one of {', '.join(sorted(BACKENDS))}", config.backend)
    with backend(config, run_dir) as endpoints:
        yield endpoints
