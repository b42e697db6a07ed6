"""Serve an ASGI app on loopback in a background thread: the scripted teachers of tests use it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from selfinstruct.core.errors import TeacherUnavailable
from selfinstruct.teacher.server import LOOPBACK


def listening_socket(port: int = 0, backlog: int = 256) -> socket.socket:
    """A bound, listening TCP socket on loopback (port 0: a free one), handed to uvicorn without a race."""
    # proto must say TCP: asyncio sets TCP_NODELAY only on such sockets, and without it every
    # response (headers, then body) waits 40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as err:
        sock.close()
        raise TeacherUnavailable(f"cannot listen on {LOOPBACK}:{port}: {err.strerror}") from err
    sock.listen(backlog)
    return sock


@contextlib.contextmanager
def serve_asgi(app: Any, **uvicorn_options: Any) -> Iterator[str]:
    """Serve `app` until the block ends; yields its OpenAI-style base URL (http://127.0.0.1:PORT/v1)."""
    sock = listening_socket()
    options = {"log_level": "warning", "access_log": False, "lifespan": "off", "log_config": None, **uvicorn_options}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise TeacherUnavailable("the test server did not start within 10 s")
    try:
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
