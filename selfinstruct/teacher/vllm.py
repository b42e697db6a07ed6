"""vLLM on a local GPU: start `vllm serve MODEL` on loopback, or attach through --base-url."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..config import GrowConfig, VllmOptions
from ..errors import TeacherUnavailable
from .registry import Endpoints, register
from .server import LOOPBACK, free_port, managed_server


def engine_args(options: VllmOptions) -> list[str]:
    """The engine options `vllm serve` and `vllm run-batch` share, extra_args last."""
    argv = [
        "--tensor-parallel-size", str(options.tensor_parallel_size),
        "--gpu-memory-utilization", str(options.gpu_memory_utilization),
        "--dtype", options.dtype,
    ]
    if options.max_model_len:
        argv += ["--max-model-len", str(options.max_model_len)]
    argv.append("--enable-prefix-caching" if options.prefix_caching else "--no-enable-prefix-caching")
    return [*argv, *options.extra_args]


def serve_command(executable: str, model: str, port: int, options: VllmOptions) -> list[str]:
    # Host and port come last: vLLM keeps the last value, so extra_args cannot move it off loopback.
    return [executable, "serve", model, *engine_args(options), "--host", LOOPBACK, "--port", str(port)]


@register("vllm")
@contextlib.contextmanager
def vllm_backend(config: GrowConfig, run_dir: Path) -> Iterator[Endpoints]:
    if config.base_url:  # one server per GPU or node, each listed as an endpoint
        yield Endpoints(base_urls=config.base_url, model=config.model or "default")
        return
    assert config.model  # GrowConfig requires --model or --base-url for vllm
    if config.batch:  # batch mode runs `vllm run-batch` per batch (teacher/batch_vllm.py): no server
        yield Endpoints(base_urls=[], model=config.model)
        return
    executable = shutil.which("vllm")
    if executable is None:
        raise TeacherUnavailable("the vllm backend needs vLLM and a GPU: pip install 'selfinstruct[vllm]'")
    port = free_port()
    argv = serve_command(executable, config.model, port, config.vllm)
    with managed_server(argv, port, run_dir / "logs" / "vllm_server.log", config.server_startup_timeout) as url:
        yield Endpoints(base_urls=[url], model=config.model)
