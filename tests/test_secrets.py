"""Nothing leaked: the API key never reaches output, logs, the store or error messages; servers stay on loopback.

The key is recognisable, so a plain byte search over everything a run wrote finds it wherever it went
(SQLite stores text as UTF-8, so the binary store and its WAL are searched the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from selfinstruct.cli import app
from fakes.serve import serve_asgi
from selfinstruct.core.config import VllmOptions, build_config
from selfinstruct.core.teacher_records import TeacherRequest
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.server import LOOPBACK, free_port
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

SECRET = "sk-test-SECRET-7f3a9c2e5b1d4086a9e1c3f5b7d9e0a2"
NEEDLES = (SECRET.encode(), b"SECRET-7f3a9c2e", SECRET.encode("utf-16-le"))
FAULTS = FakeTeacherConfig(seed=13, rate_429=0.1, retry_after=0.01, rate_500=0.1, rate_drop=0.05,
                           rate_malformed=0.05, rate_empty_choices=0.03, rate_length=0.05)


def leaks(data: bytes) -> list[bytes]:
    return [needle for needle in NEEDLES if needle in data]


def files_with_the_key(directory: Path) -> list[str]:
    return [str(path) for path in directory.rglob("*") if path.is_file() and leaks(path.read_bytes())]


def exception_texts(error: BaseException) -> str:
    """Message, repr and formatted traceback of the error and of every error a traceback would show with it.

    That is the chain Python prints: `__cause__`, and `__context__` unless suppressed by `raise ... from None`.
    (A suppressed context stays attached to the object; see docs/safety.md, known limits.)
    """
    texts, seen, current = [], set(), error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *(repr(arg) for arg in current.args)]
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    texts += traceback.format_exception(error)
    return "\n".join(texts)


def test_a_faulty_verbose_grow_writes_the_key_nowhere(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "grow.toml"
    config.write_text("max_attempts = 2\n")  # so some requests run out of attempts and are dead-lettered
    with FakeTeacher(FAULTS) as teacher:
        done = subprocess.run(
            [sys.executable, "-m", "selfinstruct", "-v", "grow", "--backend", "openai", "--base-url", teacher.base_url,
             "--out", str(out), "--target", "10", "--prompts-per-round", "2", "--config", str(config)],
            capture_output=True, timeout=180, env={**os.environ, "OPENAI_API_KEY": SECRET, "COLUMNS": "200"})
        faults = teacher.stats()["faults"]
    log = done.stdout + done.stderr
    assert done.returncode == 0, log.decode(errors="replace")
    assert sum(faults.values()) > 0 and b"retrying" in log, "the run must have logged retries"
    assert b"dead-lettered" in log, "the run must have logged a dead letter"
    assert leaks(log) == []
    assert files_with_the_key(tmp_path) == []
    assert (out / "selfinstruct.sqlite").stat().st_size > 0


def _request() -> TeacherRequest:
    return TeacherRequest(stage="instructions", prompt="Task 1: Say hi.\nTask 2:",
                          decoding=build_config({}).instruction_decoding)


def _failure(base_url: str, attempts: int = 1) -> BaseException:
    teacher = OpenAITeacher(base_urls=[base_url], model="m", api_key=SECRET, timeout=5, max_attempts=attempts)

    async def ask() -> None:
        try:
            await teacher.complete(_request())
        finally:
            await teacher.close()

    with pytest.raises(Exception) as caught:
        asyncio.run(ask())
    return caught.value


def test_an_unreachable_teacher_error_names_the_url_not_the_key() -> None:
    port = free_port()  # nothing listens there
    text = exception_texts(_failure(f"http://127.0.0.1:{port}/v1", attempts=2))
    assert f"127.0.0.1:{port}" in text
    assert leaks(text.encode()) == []


@contextlib.contextmanager
def echoing_server() -> Iterator[str]:
    """Answers 401 quoting the Authorization header back, as some APIs quote the key they refused."""

    async def refuse(request: Request) -> JSONResponse:
        message = f"Incorrect API key provided: {request.headers.get('authorization')}"
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=401)

    asgi = Starlette(routes=[Route("/v1/chat/completions", refuse, methods=["POST"])])
    with serve_asgi(asgi) as base_url:
        yield base_url


def test_a_server_that_quotes_the_key_back_does_not_get_it_into_our_error() -> None:
    with echoing_server() as base_url:
        error = _failure(base_url)
    text = exception_texts(error)
    assert "401" in text
    assert leaks(text.encode()) == []


def test_a_grow_that_fails_on_the_teacher_leaks_nothing(tmp_path: Path) -> None:
    # Every request is refused: dead letters pile up until the failure window stops the run (exit 3).
    config = tmp_path / "grow.toml"
    config.write_text("max_attempts = 1\n")
    with echoing_server() as base_url:
        result = CliRunner().invoke(
            app, ["-v", "grow", "--backend", "openai", "--base-url", base_url, "--out", str(tmp_path / "run"),
                  "--target", "5", "--config", str(config)],
            env={"OPENAI_API_KEY": SECRET, "COLUMNS": "200"})
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert leaks(result.output.encode()) == []
    assert files_with_the_key(tmp_path) == []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert leaks(exception_texts(result.exception).encode()) == []


# -- servers we start listen on loopback only -------------------------------------------------------------------

def _host(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--host"]


def test_llamacpp_server_listens_on_loopback() -> None:
    from selfinstruct.teacher import llamacpp

    pytest.importorskip("llama_cpp")
    argv = llamacpp.server_command(Path("model.gguf"), 8123)
    assert _host(argv) == ["127.0.0.1"]
    assert argv[argv.index("--port") + 1] == "8123"


@pytest.mark.parametrize("options", [VllmOptions(), VllmOptions(max_model_len=4096, prefix_caching=False),
                                     VllmOptions(extra_args=("--max-num-seqs", "64"))])
def test_vllm_server_listens_on_loopback(options: VllmOptions) -> None:
    from selfinstruct.teacher import vllm

    argv = vllm.serve_command(["/usr/bin/vllm", "serve"], "org/model", 8124, options)
    assert argv[:3] == ["/usr/bin/vllm", "serve", "org/model"]
    assert _host(argv) == ["127.0.0.1"]


def test_vllm_extra_args_cannot_move_the_server_off_loopback() -> None:
    from selfinstruct.teacher import vllm

    argv = vllm.serve_command(["vllm", "serve"], "org/model", 8124, VllmOptions(extra_args=("--host", "0.0.0.0")))
    assert _host(argv)[-1] == "127.0.0.1"


def test_helpers_bind_loopback() -> None:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, free_port()))  # free_port found a loopback port
    with FakeTeacher(FakeTeacherConfig()) as teacher:
        assert teacher.base_url.startswith("http://127.0.0.1:")
