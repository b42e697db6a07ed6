"""The judge with the real bundled model (SmolLM2-135M under llama.cpp's server), on 30+ rows grown quickly from
the fake teacher: `grow --judge`, a judge run resumed after SIGKILL without paying for a reply twice, budgets,
a second rubric version, `export --min-score`. Slow: every row is a real request to the 135M model.

The figures these runs print (distribution, examples, times; `pytest -s`) are what docs/judge.md quotes; a 135M
model is a poor judge, so nothing here asserts what it thinks, only what the machinery does with it.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from selfinstruct.core.store import STORE_NAME, Store
from selfinstruct.export.formats import ALPACA_FILE, CARD_FILE, PROVENANCE_FILE
from selfinstruct.judge.rubric import CATEGORIES, DIFFICULTIES
from selfinstruct.judge.scores import judge_summary
from selfinstruct.report.verify import verify_run
from fakes import FakeTeacher, FakeTeacherConfig
from fakes.serve import serve_asgi

pytestmark = pytest.mark.slow
TASKS = 16  # two instances each: 30+ rows (an instance the filters drop leaves a task with one)
JUDGE_CONCURRENCY = 4  # the cpu default: requests a kill can leave answered but unstored


def _cli(*args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """The real command in its own process: (result, wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "selfinstruct", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OPENAI_API_KEY": "", "COLUMNS": "200"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, time.perf_counter() - started, cpu


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """The command's messages with rich's line wrapping undone."""
    return " ".join(done.stderr.split())


def _grow_from_the_fake_teacher(out: Path) -> int:
    with FakeTeacher(FakeTeacherConfig(seed=1)) as fake:
        done, _, _ = _cli("grow", "--out", str(out), "--target", str(TASKS), "--backend", "openai",
                          "--base-url", fake.base_url)
    assert done.returncode == 0, done.stderr
    with Store.open(out) as store:
        rows = len(store.judge_targets())
    assert rows >= 30
    return rows


def test_grow_judge_with_the_bundled_model_then_export_by_score(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # The grow's teacher is the fake (fast); the judge is the real bundled model, started by `judge.backend=cpu`.
    with FakeTeacher(FakeTeacherConfig(seed=1)) as fake:
        done, wall, cpu = _cli("grow", "--out", str(out), "--target", str(TASKS), "--backend", "openai",
                               "--base-url", fake.base_url, "--judge", "--set", "judge.backend=cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "judged:" in _said(done) and "0 failed" in _said(done)
    with Store.open(out) as store:
        summary = judge_summary(store)
        rows = len(store.judge_targets())
        judge_replies = store.teacher_totals(judge=True)[0]
    assert summary is not None and rows >= 30
    assert summary.judge_model == "smollm2-135m-instruct" and summary.rubric_version == "rubric-1"
    assert len(summary.judged) + len(summary.unjudged) == rows  # every row has a verdict or a reason for none
    assert all(item.judgement.category in CATEGORIES and item.judgement.difficulty in DIFFICULTIES
               for item in summary.judged)  # the grammar holds the tags to our lists
    assert all(item.judgement.reason.startswith("unjudged:") for item in summary.unjudged)
    assert judge_replies >= rows  # one request per row, a second for each unusable first reply
    distribution = summary.distribution
    print(f"\n{rows} rows judged by {summary.judge_model}: distribution {distribution}, mean {summary.mean}, "
          f"{len(summary.unjudged)} unjudged; grow + judge wall {wall:.1f} s, CPU {cpu:.1f} s")
    for item in summary.judged[:3]:
        print(f"  score {item.judgement.score} [{item.judgement.category}/{item.judgement.difficulty}] "
              f"{item.target.instruction[:70]!r} -> {item.target.output[:60]!r}: {item.judgement.reason!r}")

    for min_score in (2, 4):
        done, _, _ = _cli("export", "--out", str(out), "--format", "alpaca", "--min-score", str(min_score))
        assert done.returncode == 0, done.stderr
        kept = json.loads((out / ALPACA_FILE).read_text(encoding="utf-8"))
        expected = sum(count for score, count in distribution.items() if score >= min_score)
        assert len(kept) == expected
        print(f"  export --min-score {min_score}: {len(kept)} of {rows} rows")
        lines = [json.loads(line) for line in (out / PROVENANCE_FILE).read_text(encoding="utf-8").splitlines()]
        assert all(line["score"] >= min_score and line["judge_reason"] for line in lines)
    assert "## Judge" in (out / CARD_FILE).read_text(encoding="utf-8")
    assert verify_run(out) == []

    # Again: every row is scored by this judge and rubric, so nothing is asked.
    done, _, _ = _cli("judge", "--out", str(out), "--backend", "cpu")
    assert done.returncode == 0, done.stderr
    assert f"{len(summary.judged)} scored before" in _said(done) and "0 answered" in _said(done)

    # Another rubric version judges again; the judge's budget is over the run directory (as the grow's is), so
    # three more prompts are the spent ones plus three. The first version's scores stay.
    done, _, _ = _cli("judge", "--out", str(out), "--backend", "cpu", "--rubric-version", "rubric-x",
                      "--max-prompts", str(judge_replies + 3))
    assert done.returncode == 0, done.stderr
    assert "stopped: judge budget spent (max_prompts" in _said(done)
    with Store.open(out) as store:
        assert len(store.judgements(rubric_version="rubric-1")) == rows
        assert 1 <= len(store.judgements(rubric_version="rubric-x")) <= 3
        assert store.teacher_totals(judge=True)[0] <= judge_replies + 3
        assert store.latest_judge() == ("smollm2-135m-instruct", "rubric-x")


class RecordingProxy:
    """Forwards every request to the real llama.cpp server and notes (epoch, prompt) of each completion it
    forwards: what the model was asked to compute, whoever was left to read the answer."""

    def __init__(self, upstream: str) -> None:
        self.origin = upstream.removesuffix("/v1")
        self.epoch = 0
        self.received: list[tuple[int, str]] = []
        self.active = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"].endswith("completions"):
            sent = json.loads(body)
            self.received.append((self.epoch, sent["messages"][-1]["content"] if "messages" in sent
                                  else sent["prompt"]))
        self.active += 1
        try:
            async with httpx.AsyncClient(timeout=600) as client:
                answer = await client.request(scope["method"], self.origin + scope["path"], content=body,
                                              headers={"content-type": "application/json"})
        finally:
            self.active -= 1
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer.content})


def _judge_rows(out: Path, scored: bool = False) -> int:
    query = "SELECT count(*) FROM judgements" + (" WHERE score IS NOT NULL" if scored else "")
    try:
        with sqlite3.connect(f"{(out / STORE_NAME).as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(query).fetchone()[0]
    except sqlite3.Error:
        return 0


def _stored_prompts(out: Path) -> set[str]:
    with sqlite3.connect(out / STORE_NAME) as db:
        return {row[0] for row in db.execute("SELECT prompt FROM replies WHERE stage = 'judge'")}


def test_a_judge_killed_mid_run_resumes_and_pays_for_no_reply_twice(tmp_path: Path,
                                                                      bundled_llama_server: str) -> None:
    out = tmp_path / "run"
    rows = _grow_from_the_fake_teacher(out)
    proxy = RecordingProxy(bundled_llama_server)
    with serve_asgi(proxy) as url:
        argv = [sys.executable, "-m", "selfinstruct", "judge", "--out", str(out), "--backend", "cpu", "--base-url", url]
        proxy.epoch = 1
        killed = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "OPENAI_API_KEY": ""})
        deadline = time.monotonic() + 600
        while _judge_rows(out) < 5 and time.monotonic() < deadline and killed.poll() is None:
            time.sleep(0.2)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        while proxy.active:  # the server finishes what it was computing for the killed run
            time.sleep(0.2)
        judged_at_kill, scored_at_kill = _judge_rows(out), _judge_rows(out, scored=True)
        stored_before = _stored_prompts(out)
        assert 5 <= judged_at_kill < rows, "the judge finished before the kill: nothing to resume"

        proxy.epoch = 2
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "OPENAI_API_KEY": "", "COLUMNS": "200"})
        resumed_wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    first = [prompt for epoch, prompt in proxy.received if epoch == 1]
    second = [prompt for epoch, prompt in proxy.received if epoch == 2]
    resent = [prompt for prompt in second if prompt in stored_before]
    assert not resent, f"the resumed judge asked again for {len(resent)} stored replies"
    # A kill loses at most the replies computed but not yet stored: one per request in flight.
    assert 0 <= len(first) - len(stored_before) <= JUDGE_CONCURRENCY
    assert len(second) == len(set(second))  # and the resumed run asks nothing twice
    with Store.open(out) as store:
        judgements = store.judgements("smollm2-135m-instruct", "rubric-1")
        assert sorted((j.task_id, j.instance) for j in judgements) == sorted(
            (t.task_id, t.instance) for t in store.judge_targets())
        assert store.integrity_problems() == []
    assert f"{scored_at_kill} scored before" in _said(done)  # rows scored before the kill were skipped
    print(f"\nkilled after {judged_at_kill} of {rows} rows ({len(first)} requests, {len(stored_before)} replies "
          f"stored); resumed: {len(second)} requests in {resumed_wall:.1f} s, none for a stored reply; "
          f"scores {Counter(j.score for j in judgements)}")
