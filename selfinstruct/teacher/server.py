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
from collections.abc import Iterator
from pathlib import Path

import httpx

from ..errors import TeacherUnavailable

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
def managed_server(argv: list[str], port: int, log_path: Path, startup_timeout: float) -> Iterator[str]:
    """Run `argv` (a server listening on `port`), yield its /v1 base URL, stop it on exit or Ctrl-C."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as server_log:
        log.info("starting teacher server: %s (log: %s)", argv[0], log_path)
        process = subprocess.Popen(
            argv, stdout=server_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
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
    raise TeacherUnavailable(f"the teacher server did not answer within {timeout:.0f} s; see {log_path}")


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
