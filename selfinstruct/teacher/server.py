"""Start a local OpenAI-compatible server as a subprocess, wait until it answers, always stop it."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from ..core.errors import ConfigError, TeacherUnavailable
from .retry import unreachable_cause

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"  # servers we start never listen beyond this machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: SIGTERM the server when our process dies, even by SIGKILL, so no
    # orphaned model server keeps a GPU or two cores busy.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def managed_server(
    argv: list[str], port: int, log_path: Path, startup_timeout: float, env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run `argv` (a server listening on `port`), yield its /v1 base URL, stop it on exit or Ctrl-C.

    `env` adds to (or overrides) this process's environment for the server only.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as server_log:
        log.info("starting teacher server: %s (log: %s)", " ".join(argv[:4]), log_path)
        process = subprocess.Popen(
            argv, stdout=server_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent, env={**os.environ, **(env or {})},
        )
        try:
            base_url = f"http://{LOOPBACK}:{port}/v1"
            _wait_until_ready(process, base_url, log_path, startup_timeout)
            yield base_url
        finally:
            _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TeacherUnavailable(
                f"the teacher server exited with code {process.returncode} before answering; "
                f"last lines of {log_path}:\n{_tail(log_path)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                return
        time.sleep(0.25)
    raise TeacherUnavailable(
        f"the teacher server did not answer within {timeout:.0f} s (raise --server-startup-timeout for a model "
        f"that loads for longer); last lines of {log_path}:\n{_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def served_model(base_urls: list[str], api_key: str, timeout: float) -> str:
    """The one model id that every endpoint lists at GET /models (how a server names the model it serves).

    Servers reject a model name they do not serve (vLLM answers 404), so attaching without --model asks.
    """
    served = {url: _model_ids(url, api_key, timeout) for url in base_urls}
    ids = {model for models in served.values() for model in models}
    if len(ids) == 1 and all(served.values()):
        return ids.pop()
    if all(len(models) == 1 for models in served.values()):
        listing = "; ".join(f"{url} serves {models[0]}" for url, models in served.items())
        raise ConfigError("--base-url", "base_url", "endpoints that serve one model", listing)
    url, models = next((url, models) for url, models in served.items() if len(models) != 1)
    raise ConfigError("--model", "model", f"one of the models {url} serves: {', '.join(models) or '(none)'}",
                      "no --model")


def _model_ids(base_url: str, api_key: str, timeout: float) -> list[str]:
    url = f"{base_url.rstrip('/')}/models"
    hint = "start the server, fix --base-url, or pass --model"
    try:
        # The key goes in a header only; no message below quotes the request.
        answer = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"},
                           timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
    except httpx.HTTPError as err:
        raise TeacherUnavailable(f"cannot ask {url} which model it serves: {_reason(err)}; {hint}") from None
    if answer.status_code != 200:
        key_hint = "; set OPENAI_API_KEY" if answer.status_code in (401, 403) else ""
        raise TeacherUnavailable(f"{url} answered HTTP {answer.status_code}{key_hint}; or pass --model")
    try:
        return [str(entry["id"]) for entry in answer.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise TeacherUnavailable(f"{url} did not answer an OpenAI model list ({{\"data\": [{{\"id\": ...}}]}}); "
                                 "pass --model") from None


def _reason(err: httpx.HTTPError) -> str:
    # httpx's class (ConnectError, ConnectTimeout) and its text, then the request path's fail-fast words for
    # the cause (connection refused, name not resolved, TLS error).
    detail = str(err) or repr(err)
    cause = unreachable_cause(err)
    return f"{type(err).__name__} ({detail}): {cause}" if cause else f"{type(err).__name__} ({detail})"
