"""An OpenAI-compatible teacher for tests and benchmarks, on 127.0.0.1 only.

It answers our prompts (instruction lists, the classification question,
instances, Alpaca tasks) with plausible, varied text that `parse` reads, and can
be slow, saturated or faulty on purpose:

    with FakeTeacher(FakeTeacherConfig(latency=0.05, capacity=8, rate_429=0.1)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        server.stats()["faults"]["429"]

or as a process, for kill tests:

    python -m fakes.fake_teacher --port 8011 --latency 0.2 --rate-500 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import threading
import time
import typing
from typing import Any

import httpx
import uvicorn

from selfinstruct.core.errors import TeacherUnavailable
from selfinstruct.teacher.server import LOOPBACK
from .fake_server import FAULTS, FakeTeacherApp, FakeTeacherConfig, quiet_dropped_connections
from .serve import listening_socket

__all__ = ["FAULTS", "FakeTeacher", "FakeTeacherConfig", "main"]

_STARTUP_TIMEOUT = 10.0
_BACKLOG = 2048  # benchmarks open hundreds of connections at once


class FakeTeacher:
    """The fake teacher served by uvicorn in a background thread; use it as a context manager."""

    def __init__(self, config: FakeTeacherConfig | None = None) -> None:
        self.config = config or FakeTeacherConfig()
        self.app = FakeTeacherApp(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        if self.port is None:
            raise TeacherUnavailable("the fake teacher is not running; use it as a context manager or call start()")
        return f"http://{LOOPBACK}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def start(self) -> FakeTeacher:
        """Serve on a free port (or config.port); return once the server answers. Counters start at zero."""
        if self._thread is not None:
            return self
        self.app = FakeTeacherApp(self.config)  # fresh, since its semaphore binds to the new loop
        sock = listening_socket(self.config.port, _BACKLOG)
        self.port = sock.getsockname()[1]
        quiet_dropped_connections()
        # log_config=None: an embedded server must not reconfigure the host process's logging.
        uvicorn_config = _uvicorn_config(self.app, log_config=None)
        self._server = uvicorn.Server(uvicorn_config)
        self._thread = threading.Thread(target=self._serve, args=(sock,), name=f"fake-teacher-{self.port}", daemon=True)
        self._thread.start()
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        """Release hung requests, let in-flight ones finish, and join the server thread."""
        if self._server is None or self._thread is None:
            return
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: nothing hangs
                self._loop.call_soon_threadsafe(self.app.release_hangs)
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._server = self._thread = None

    def __enter__(self) -> FakeTeacher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self, sock: socket.socket) -> None:
        asyncio.run(self._serve_async(sock))

    async def _serve_async(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        assert self._server is not None
        await self._server.serve(sockets=[sock])

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._thread is None or not self._thread.is_alive():
                raise TeacherUnavailable(f"the fake teacher on port {self.port} stopped while starting")
            if self._server is not None and self._server.started:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.base_url}/models", timeout=_STARTUP_TIMEOUT).status_code == 200:
                        return
            time.sleep(0.01)
        self.stop()
        raise TeacherUnavailable(f"the fake teacher on port {self.port} did not answer within {_STARTUP_TIMEOUT:.0f} s")


def _uvicorn_config(app: FakeTeacherApp, **overrides: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app.asgi(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=_BACKLOG,
        # Longer than any client's idle time, so a kept-alive connection is never closed under a request.
        timeout_keep_alive=120,
        # Hangs are released on stop; this bounds anything else still running.
        timeout_graceful_shutdown=2,
        **overrides,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.fake_teacher",
        description="Serve the fake OpenAI-compatible teacher on 127.0.0.1 in the foreground.",
    )
    for name, field in FakeTeacherConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else None
        kind = str if choices else field.annotation  # a Literal is no callable argparse can convert with
        parser.add_argument(flag, type=kind, choices=choices, default=field.default, help=field.description)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; prints the base URL once the port is open."""
    config = FakeTeacherConfig(**vars(_parser().parse_args(argv)))
    app = FakeTeacherApp(config)
    sock = listening_socket(config.port, _BACKLOG)
    server = uvicorn.Server(_uvicorn_config(app))  # configures uvicorn's loggers, so quiet them after
    quiet_dropped_connections()
    # The socket already listens, so a client that reads this line can connect at once.
    print(f"fake teacher serving http://{LOOPBACK}:{sock.getsockname()[1]}/v1", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
