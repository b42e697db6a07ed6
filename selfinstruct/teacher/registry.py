"""Backends by name: the one table a new backend is added to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..core.config import GrowConfig
from ..core.errors import ConfigError
from .backend import Backend, Endpoints
from .llamacpp import cpu_backend
from .openai_api import openai_backend
from .vllm import vllm_backend

BACKENDS: dict[str, Backend] = {"cpu": cpu_backend, "openai": openai_backend, "vllm": vllm_backend}


@contextlib.contextmanager
def open_teacher(config: GrowConfig, run_dir: Path) -> Iterator[Endpoints]:
    """Endpoints of the configured backend, for as long as the `with` block runs."""
    backend = BACKENDS.get(config.backend)
    if backend is None:
        raise ConfigError("--backend", "backend", f"one of {', '.join(sorted(BACKENDS))}", config.backend)
    with backend(config, run_dir) as endpoints:
        yield endpoints
