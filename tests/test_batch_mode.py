"""Batch mode against our fake Batch API: a grow to its target, a grow killed mid-batch and resumed, line
errors and expiry retried in later batches, a lost batch id found again, and the Batch API's half price.

"Nothing paid twice" is checked at the server: it counts every line it answered, by custom_id (the
request's cache key), and the store's batches must hold every request once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from selfinstruct.core.config import build_config
from selfinstruct.core.errors import ConfigError
from selfinstruct.grow import grow
from selfinstruct.core.prices import cost, price_for
from selfinstruct.core.store import STORE_NAME, BatchRecord, Store
from selfinstruct.teacher.batch import BatchTeacher
from selfinstruct.teacher.batch_runner import BatchWaitExceeded
from selfinstruct.teacher.batch_api import BatchApiRunner
from selfinstruct.teacher.batch_files import ENDPOINTS, input_line
from selfinstruct.core.teacher_records import TeacherRequest
from selfinstruct.teacher.openai_compat import request_body
from fakes.fake_batch import FakeBatchApp, FakeBatchConfig
from fakes.serve import serve_asgi
from selfinstruct.core.config import SELF_INSTRUCT_CLASSIFY

STARTUP_DEADLINE = 120.0  # seconds for a grow subprocess to import, submit or finish on a busy machine


@pytest.fixture
def fake_batch_api(request: pytest.FixtureRequest) -> Iterator[tuple[FakeBatchApp, str]]:
    config = getattr(request, "param", FakeBatchConfig())
    app = FakeBatchApp(config)
    with serve_asgi(app.asgi()) as url:
        yield app, url


def _config(url: str, out: Path, target: int, **extra: object):
    return build_config({"out": out, "target": target, "backend": "openai", "base_url": [url], "batch": True,
                         "batch_poll_seconds": 0.05, "prompts_per_round": 2, "pipeline_rounds": 2, **extra})


def _stored_batch_lines(out: Path) -> list[tuple[str, str, str | None]]:
    """(key, batch status, remote id) of every request line of every recorded batch."""
    with sqlite3.connect(out / STORE_NAME) as db:
        return db.execute("SELECT r.key, b.status, b.remote_id FROM batch_requests r JOIN batches b ON b.id = r.batch_id"
                          ).fetchall()


def _assert_paid_once(app: FakeBatchApp, out: Path) -> None:
    assert app.answered and set(app.answered.values()) == {1}, "a request line was answered twice"
    recorded = Counter(key for key, _, _ in _stored_batch_lines(out))
    assert set(app.answered) <= set(recorded), "every answered line belongs to a recorded batch"
    again = {key for key, times in recorded.items() if times > 1}
    assert again <= set(app.failed), "only a request whose line failed went into another batch"
    with Store.open(out) as store:
        assert all(store.cached_reply(key) is not None for key in app.answered), "every answer is in the cache"


def test_batch_grow_reaches_its_target_paying_each_request_once(
        fake_batch_api: tuple[FakeBatchApp, str], tmp_path: Path) -> None:
    app, url = fake_batch_api
    result = grow(_config(url, tmp_path / "run", target=10))
    assert result.accepted == 10
    rows = json.loads((tmp_path / "run" / "alpaca_data.json").read_text())
    assert len({row["instruction"] for row in rows}) == 10
    _assert_paid_once(app, tmp_path / "run")
    statuses = {status for _, status, _ in _stored_batch_lines(tmp_path / "run")}
    assert statuses == {"collected"}
    # One batch per stage of a wave of rounds: generation, classification, instances.
    assert {batch["endpoint"] for batch in app.batches.values()} == {"/v1/chat/completions"}
    assert len(app.batches) >= 3 and all(batch["status"] == "completed" for batch in app.batches.values())
    assert result.usage.requests == sum(app.answered.values())


def test_cost_figure_uses_the_batch_price(fake_batch_api: tuple[FakeBatchApp, str], tmp_path: Path) -> None:
    app, url = fake_batch_api
    config = _config(url, tmp_path / "run", target=3, model="gpt-4o-mini")
    result = grow(config)
    spent = result.spent
    assert spent is not None and spent.prompt_tokens > 0 and spent.completion_tokens > 0
    list_price = price_for("gpt-4o-mini", "openai", {})
    assert list_price is not None
    synchronous = cost(list_price, spent.prompt_tokens, spent.completion_tokens)
    assert synchronous is not None and spent.cost == pytest.approx(synchronous / 2)
    # gpt-4o-mini's example price, halved: 0.075 USD in, 0.30 USD out per million tokens.
    assert spent.cost == pytest.approx((spent.prompt_tokens * 0.075 + spent.completion_tokens * 0.30) / 1e6)


@pytest.mark.parametrize("fake_batch_api", [FakeBatchConfig(seed=5, rate_line_error=0.3)], indirect=True)
def test_failed_lines_go_into_a_later_batch(fake_batch_api: tuple[FakeBatchApp, str], tmp_path: Path) -> None:
    app, url = fake_batch_api
    result = grow(_config(url, tmp_path / "run", target=8))
    assert result.accepted == 8
    assert sum(app.failed.values()) > 0
    retried = [key for key in app.failed if app.answered.get(key)]
    assert retried, "a line that failed was answered in a later batch"
    _assert_paid_once(app, tmp_path / "run")
    assert result.usage.errors.get("server_error", 0) == sum(app.failed.values())


@pytest.mark.parametrize("fake_batch_api", [FakeBatchConfig(expire_after_lines=3)], indirect=True)
def test_lines_of_an_expired_batch_go_into_a_later_batch(fake_batch_api: tuple[FakeBatchApp, str],
                                                         tmp_path: Path) -> None:
    app, url = fake_batch_api
    result = grow(_config(url, tmp_path / "run", target=4))
    assert result.accepted == 4
    assert "expired" in app.statuses().values()
    _assert_paid_once(app, tmp_path / "run")


def test_a_batch_whose_id_was_never_recorded_is_found_by_its_input_file(
        fake_batch_api: tuple[FakeBatchApp, str], tmp_path: Path) -> None:
    """Killed between creating a batch and recording its id: the next run finds it instead of creating another."""
    app, url = fake_batch_api
    request = TeacherRequest(stage="classify", prompt="Is this a classification task? Sort the list.",
                             decoding=SELF_INSTRUCT_CLASSIFY)
    key = request.cache_key("chat", "gpt-4o-mini")
    line = input_line(key, ENDPOINTS["chat"], request_body(request, "chat", "gpt-4o-mini"))

    async def submit_then_lose_the_id(store: Store) -> str:
        client = openai.AsyncOpenAI(base_url=url, api_key="not-needed")
        uploaded = await client.files.create(file=("in.jsonl", line.data), purpose="batch")
        created = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                              completion_window="24h")
        store.add_batch(BatchRecord(id="lost", runner="openai", endpoint=ENDPOINTS["chat"], status="prepared",
                                    input_file_id=uploaded.id), [(key, request.stage, request.prompt)])
        await client.close()
        return created.id

    async def resume(store: Store) -> str:
        runner = BatchApiRunner.connect(url, "not-needed", store, poll_seconds=0.05, max_wait=60)
        teacher = BatchTeacher(runner, store, "gpt-4o-mini", "chat")
        reply = await teacher.complete(request)
        await teacher.close()
        return reply.text

    with Store.open(tmp_path) as store:
        remote_id = asyncio.run(submit_then_lose_the_id(store))
        text = asyncio.run(resume(store))
        assert store.batches()[0].remote_id == remote_id and store.batches()[0].status == "collected"
        assert store.cached_reply(key) is not None and store.cached_reply(key).text == text
    assert len(app.batches) == 1 and dict(app.answered) == {key: 1}


def _grow_process(url: str, out: Path, target: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "selfinstruct.cli", "grow", "--out", str(out), "--target", str(target),
            "--backend", "openai", "--base-url", url, "--batch", "--set", "batch_poll_seconds=0.05",
            "--prompts-per-round", "2", "--pipeline-rounds", "2"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OPENAI_API_KEY": ""})


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _submitted_in_store(out: Path) -> list[str]:
    try:
        with sqlite3.connect(out / STORE_NAME, timeout=5) as db:
            return [row[0] for row in db.execute("SELECT remote_id FROM batches WHERE status = 'submitted'")]
    except sqlite3.Error:
        return []


@pytest.mark.parametrize("fake_batch_api", [FakeBatchConfig(hold=True)], indirect=True)
def test_grow_killed_mid_batch_polls_the_same_batch_when_resumed(
        fake_batch_api: tuple[FakeBatchApp, str], tmp_path: Path) -> None:
    app, url = fake_batch_api
    out = tmp_path / "run"
    killed = _grow_process(url, out, target=6)
    try:
        # Held: the first batch (generation requests) stays in_progress until released.
        _wait_for(lambda: "in_progress" in app.statuses().values() and _submitted_in_store(out), "a batch in progress")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    [remote_id] = _submitted_in_store(out)
    assert app.statuses() == {remote_id: "in_progress"} and not app.answered
    polls_before = app.polls[remote_id]
    resumed = _grow_process(url, out, target=6)
    try:
        _wait_for(lambda: app.polls[remote_id] > polls_before, "the resumed grow polling the same batch")
        assert len(app.batches) == 1, "the resumed grow did not submit the requests again"
        app.release()
        output, _ = resumed.communicate(timeout=STARTUP_DEADLINE)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert resumed.returncode == 0, output.decode()
    assert len({row["instruction"] for row in json.loads((out / "alpaca_data.json").read_text())}) == 6
    _assert_paid_once(app, out)
    first = [status for key, status, remote in _stored_batch_lines(out) if remote == remote_id]
    assert first and set(first) == {"collected"}


def test_batch_mode_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch mode needs --backend openai"):
        build_config({"batch": True, "backend": "cpu"})
    with pytest.raises(ConfigError, match="chat requests only"):
        build_config({"batch": True, "backend": "vllm", "model": str(tmp_path), "api": "completions"})
    with pytest.raises(ConfigError, match="batch_prompts must be 1"):
        build_config({"batch": True, "backend": "openai", "api": "completions", "batch_prompts": 4})
    with pytest.raises(ConfigError, match="one --base-url"):
        build_config({"batch": True, "backend": "openai", "base_url": ["http://a/v1", "http://b/v1"]})
    local = build_config({"batch": True, "backend": "vllm", "model": str(tmp_path)})
    assert local.api == "chat" and local.batch_prompts == 1
    remote = build_config({"batch": True, "backend": "openai", "api": "completions"})
    assert remote.api == "completions" and remote.batch_prompts == 1


def test_a_batch_recorded_but_never_uploaded_is_sent_again(fake_batch_api: tuple[FakeBatchApp, str],
                                                          tmp_path: Path) -> None:
    app, url = fake_batch_api
    request = TeacherRequest(stage="classify", prompt="Is this a classification task? Name a fruit.",
                             decoding=SELF_INSTRUCT_CLASSIFY)
    key = request.cache_key("chat", "gpt-4o-mini")

    async def resume(store: Store) -> None:
        runner = BatchApiRunner.connect(url, "not-needed", store, poll_seconds=0.05, max_wait=60)
        teacher = BatchTeacher(runner, store, "gpt-4o-mini", "chat")
        await teacher.complete(request)
        await teacher.close()

    with Store.open(tmp_path) as store:
        store.add_batch(BatchRecord(id="never-sent", runner="openai", endpoint=ENDPOINTS["chat"], status="prepared"),
                        [(key, request.stage, request.prompt)])
        asyncio.run(resume(store))
        [batch] = store.batches()
        assert batch.id != "never-sent" and batch.status == "collected"
    assert dict(app.answered) == {key: 1}


@pytest.mark.parametrize("fake_batch_api", [FakeBatchConfig(hold=True)], indirect=True)
def test_past_the_max_wait_the_run_stops_and_the_next_run_collects_the_batch(
        fake_batch_api: tuple[FakeBatchApp, str], tmp_path: Path) -> None:
    app, url = fake_batch_api
    out = tmp_path / "run"
    with pytest.raises(BatchWaitExceeded, match="run again to keep polling"):
        grow(_config(url, out, target=4, batch_max_wait=0.5))
    [remote_id] = [remote for _, status, remote in _stored_batch_lines(out) if status == "submitted"][:1]
    app.release()
    assert grow(_config(url, out, target=4)).accepted == 4
    assert remote_id in {remote for _, status, remote in _stored_batch_lines(out) if status == "collected"}
    _assert_paid_once(app, out)
