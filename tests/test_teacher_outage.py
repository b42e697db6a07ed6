"""A teacher that goes away: an outage within the retry budget is waited out (one log line, no dead letter),
and a teacher that never answered fails at once, naming the URL and what happened (exit code 3)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import app
from selfinstruct.core.store import STORE_NAME
from selfinstruct.teacher.retry import CONNECTION, error_class
from selfinstruct.teacher.server import free_port
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

OUTAGE_SECONDS = float(os.environ.get("SELFINSTRUCT_TEST_OUTAGE", "20"))  # the acceptance run uses 90


def _fake_teacher_process(port: int, latency: float = 0.2) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "fakes.fake_teacher", "--port", str(port), "--latency", str(latency),
            "--seed", "4"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    assert "serving" in process.stdout.readline()  # printed once the port listens
    return process


def _serving(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.load(response)["in_flight"]


def _stored_replies(out: Path) -> int:
    try:
        with sqlite3.connect(out / STORE_NAME, timeout=5) as db:
            return db.execute("SELECT count(*) FROM replies").fetchone()[0]
    except sqlite3.Error:
        return 0


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        process.wait(timeout=30)


def test_a_teacher_killed_mid_run_and_started_again_costs_no_request(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "run"
    teacher = _fake_teacher_process(port)
    argv = [sys.executable, "-m", "selfinstruct.cli", "grow", "--out", str(out), "--target", "60", "--backend",
            "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--prompts-per-round", "4",
            "--retry-budget", str(OUTAGE_SECONDS * 3)]
    env = {**os.environ, "OPENAI_API_KEY": "", "COLUMNS": "400"}
    grow = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while _stored_replies(out) < 20 and time.monotonic() < deadline and grow.poll() is None:
            time.sleep(0.05)
        _stop(teacher, signal.SIGKILL)  # as an OOM kill does: connections reset, then refused
        print(f"teacher killed at {time.strftime('%H:%M:%S')} for {OUTAGE_SECONDS:g} s")
        time.sleep(OUTAGE_SECONDS)
        assert grow.poll() is None  # still waiting for the teacher
        teacher = _fake_teacher_process(port)
        output, _ = grow.communicate(timeout=300)
    finally:
        _stop(grow, signal.SIGKILL)
        _stop(teacher)
    print(output)  # pytest -rP shows it: the log lines and the summary of the run
    text = " ".join(output.split())  # rich wraps long lines
    assert grow.returncode == 0, output
    assert "60/60 accepted" in text
    assert text.count("teacher down since") == 1, output
    assert f"waiting up to {OUTAGE_SECONDS * 3:.0f} s" in text or "waiting up to" in text
    assert "teacher back after" in text
    # Killed mid-request, the server dropped its connections: connection errors, not timeouts (a timeout would
    # also have cut the adaptive limit, as if the server had been too slow).
    assert "failed attempts" in text and "timeout" not in text.split("failed attempts")[1].split("retried")[0]
    with sqlite3.connect(out / STORE_NAME) as db:
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_server_killed_mid_request_is_a_connection_error_not_a_timeout(transport: str) -> None:
    if transport == "aiohttp" and getattr(openai, "DefaultAioHttpClient", None) is None:
        pytest.skip("the SDK's aiohttp extra is not installed")
    port = free_port()
    teacher = _fake_teacher_process(port, latency=5.0)
    http = openai.DefaultAioHttpClient() if transport == "aiohttp" else openai.DefaultAsyncHttpxClient()
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, http_client=http)

    async def killed_while_asking() -> BaseException:
        asking = asyncio.ensure_future(client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Name a colour."}]))
        deadline = time.monotonic() + 60
        while _serving(port) == 0 and time.monotonic() < deadline:  # killed while it serves (5 s), not before
            await asyncio.sleep(0.05)
        assert _serving(port) == 1
        _stop(teacher, signal.SIGKILL)
        try:
            await asking
        except openai.OpenAIError as err:
            return err
        finally:
            await client.close()
        raise AssertionError("a killed server answered")

    try:
        error = asyncio.run(killed_while_asking())
    finally:
        _stop(teacher)
    assert error_class(error) == CONNECTION, repr(error)


def _closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        (_closed_port, "connection refused"),
        (lambda: "http://no-such-teacher.invalid/v1", "name not resolved"),
        ("tls-to-plain", "TLS error"),
    ],
    ids=["closed-port", "unresolvable-host", "tls-to-a-plain-port"],
)
def test_a_teacher_that_never_answered_fails_at_once_naming_the_url_and_the_cause(tmp_path: Path, url: object,
                                                                                  cause: str) -> None:
    with FakeTeacher() as plain:
        base_url = plain.base_url.replace("http://", "https://") if url == "tls-to-plain" else url()  # type: ignore[operator]
        args = ["grow", "--out", str(tmp_path), "--target", "5", "--backend", "openai", "--base-url", base_url]
        result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": ""}, terminal_width=400)
        served = plain.stats()["requests"]
    text = " ".join(result.output.split())
    assert result.exit_code == 3, result.output
    assert base_url in text and cause in text and "Traceback" not in text
    assert served == 0  # the TLS case reached the plain server, which never saw a request it could read
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
