"""The OpenAI API, or any OpenAI-compatible endpoint given by --base-url."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..core.config import GrowConfig
from ..core.errors import ConfigError
from .backend import Endpoints, attach

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


@contextlib.contextmanager
def openai_backend(config: GrowConfig, run_dir: Path) -> Iterator[Endpoints]:
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key and not config.base_url:
        raise ConfigError("environment", "OPENAI_API_KEY", "an API key for the OpenAI API (or pass --base-url)")
    if config.base_url:  # any OpenAI-compatible server: it names the model it serves
        yield attach(config, key or "not-needed")
        return
    yield Endpoints(base_urls=[OPENAI_URL], model=config.model or DEFAULT_MODEL, api_key=key)
