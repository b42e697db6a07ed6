"""Nothing lost, nothing duplicated, nothing paid twice: `selfinstruct grow` SIGKILLed 20 times, then finished.

Each grow is the real command (`selfinstruct grow ...`, the CLI's own entry point) in its own process. Starting
Python and importing the package takes seconds here, twenty times over, so the killed grows are forks of one
process that imported `selfinstruct.cli` once (see LAUNCHER); the last grow, which finishes the run, is a
fresh `python -m selfinstruct grow`. A seeded RNG picks when to kill: while the store opens, at a random point
of a round (requests, filtering, the commit, the export), or right after a round commits. After every kill
the run directory must be consistent as it stands; at the end the run must be complete and `verify` sound.

"No request whose answer was stored is sent again", made checkable: the fake teacher sits behind a recorder
that notes each prompt it receives and which grow process (epoch) was running. Before starting epoch k the
test reads the prompts of the replies table. Then:
  1. no request received in epoch k carries a prompt that was already stored before epoch k started;
  2. waste is bounded: in a killed epoch, requests received - replies stored <= the concurrency limit. The
     client stores each reply before it awaits anything else, and every round in flight (rounds are
     pipelined) shares the teacher's `concurrency` slots, so at any instant at most `concurrency` requests
     are sent but not yet stored: a kill can lose at most those. An epoch that ends on its own loses none.
     (Requests repeated inside one epoch would add to the waste; they are counted apart.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from selfinstruct.cli import app
from fakes.serve import serve_asgi
from selfinstruct.core.config import build_config
from selfinstruct.generate.prompts import render_classify_prompt
from selfinstruct.core.store import STORE_NAME, Store
from selfinstruct.core.teacher_records import TeacherReply, TeacherRequest
from selfinstruct.teacher.cache import CachedTeacher
from selfinstruct.teacher.openai_compat import OpenAITeacher
from fakes.fake_server import FakeTeacherApp, FakeTeacherConfig

KILLS = 20
TARGET = 600  # well beyond what 20 short-lived grows reach (about 250 here), so every kill lands in a live run
CONCURRENCY = 8
LATENCY = 0.03
STARTUP_DEADLINE = 60.0  # seconds for a grow to import and take the lock on a busy machine
# Kill delays after a grow's first request are drawn from [0, ROUND_SECONDS]. Rounds overlap (up to
# pipeline_rounds in flight), so at any moment one round sends requests while an earlier one is filtered,
# committed or exported; here 0.5 s spans one or two commits. It only shapes where kills land.
ROUND_SECONDS = 0.5
RNG_SEED = 20240611


class RecordingTeacher:
    """The fake teacher's ASGI app behind a recorder of (epoch, prompt) for every completion request."""

    def __init__(self, config: FakeTeacherConfig):
        self.inner = FakeTeacherApp(config).asgi()
        self.epoch = 0
        self.received: list[tuple[int, str]] = []
        self.active = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("completions"):
            return await self.inner(scope, receive, send)
        messages = [await receive()]
        while messages[-1]["type"] == "http.request" and messages[-1].get("more_body"):
            messages.append(await receive())
        if messages[-1]["type"] == "http.disconnect":
            return  # a killed grow's request cut short: nobody reads the answer, so none is made
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            body = json.loads(b"".join(message.get("body", b"") for message in messages))
            self.received.append((self.epoch, body["messages"][-1]["content"]))

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        self.active += 1
        try:
            await self.inner(scope, replay, send)
        finally:
            self.active -= 1

    def settle(self) -> None:
        """Wait until requests of a killed grow are drained, so none is counted in the next epoch."""
        time.sleep(0.05)  # bytes already in the socket are read within a loop turn
        deadline = time.monotonic() + 10
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)


@contextlib.contextmanager
def serving(asgi: RecordingTeacher) -> Iterator[str]:
    with serve_asgi(asgi, timeout_keep_alive=120, timeout_graceful_shutdown=2) as base_url:
        yield base_url


def grow_argv(base_url: str, out: Path) -> list[str]:
    return ["grow", "--backend", "openai", "--base-url", base_url, "--out", str(out), "--target", str(TARGET),
            "--prompts-per-round", "2", "--concurrency", str(CONCURRENCY)]


GROW_ENV = {**os.environ, "OPENAI_API_KEY": "", "COLUMNS": "200"}

# Reads JSON commands on stdin, answers one JSON line each. "start" forks a child that runs the CLI exactly as
# `python -m selfinstruct` does (`app()` on the given arguments), output to a log file; "poll" and "wait" reap.
# The launcher has no threads and no open files but its pipes, so a fork of it is as clean as a new process.
LAUNCHER = r"""
import json, os, sys, traceback
import selfinstruct.cli

for line in sys.stdin:
    command, arg = json.loads(line)
    if command == "start":
        argv, log = arg
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                null, out = os.open(os.devnull, os.O_RDONLY), os.open(log, os.O_WRONLY | os.O_CREAT, 0o644)
                os.dup2(null, 0), os.dup2(out, 1), os.dup2(out, 2)
                selfinstruct.cli.app(argv, prog_name="selfinstruct")
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os._exit(code)
        reply = pid
    elif command == "poll":
        done, status = os.waitpid(arg, os.WNOHANG)
        reply = os.waitstatus_to_exitcode(status) if done else None
    else:
        reply = os.waitstatus_to_exitcode(os.waitpid(arg, 0)[1])
    print(json.dumps(reply), flush=True)
"""


class Grow:
    """One grow process forked by the launcher: poll, kill and reap it like a Popen."""

    def __init__(self, launcher: subprocess.Popen[str], argv: list[str], log: Path):
        self.launcher, self.log = launcher, log
        self.pid: int = self._ask("start", [argv, str(log)])
        self.returncode: int | None = None

    def _ask(self, command: str, arg: Any) -> Any:
        assert self.launcher.stdin and self.launcher.stdout
        self.launcher.stdin.write(json.dumps([command, arg]) + "\n")
        self.launcher.stdin.flush()
        return json.loads(self.launcher.stdout.readline())

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._ask("poll", self.pid)
        return self.returncode

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self._ask("wait", self.pid)
        return self.returncode


@contextlib.contextmanager
def launcher() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=GROW_ENV)
    try:
        yield process
    finally:
        assert process.stdin
        process.stdin.close()  # the launcher's loop ends and it exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class StoreReader:
    """Read-only looks at the store from the test, as another process would see it."""

    def __init__(self, out: Path):
        self.path = out / STORE_NAME

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        if not self.path.is_file():
            return []
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            return db.execute(statement).fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):  # a grow killed before its first migration committed
                return []
            raise
        finally:
            db.close()

    def rounds(self) -> int:
        rows = self.query("SELECT count(*) FROM rounds")
        return rows[0][0] if rows else 0

    def stored_prompts(self) -> set[str]:
        return {row[0] for row in self.query("SELECT prompt FROM replies")}

    def reply_rows(self) -> int:
        rows = self.query("SELECT count(*) FROM replies")
        return rows[0][0] if rows else 0


@dataclass
class Epoch:
    number: int
    mode: str
    delay: float
    stored_before: set[str] = field(default_factory=set)
    rows_before: int = 0
    rows_after: int = 0
    rounds_before: int = 0
    rounds_after: int = 0
    received_before: int = 0
    killed: bool = True
    export_lag: int = 0  # accepted examples in the store but not yet in alpaca_data.json at the kill


def wait_until_working(process: Grow, out: Path, log: Path) -> None:
    """The grow has imported, validated its seeds and holds the run lock (it writes its PID there)."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    lock = out / ".lock"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"grow exited with {process.returncode} before working:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if lock.read_text().strip() == str(process.pid):
                return
        time.sleep(0.005)
    raise AssertionError(f"grow did not take the run lock within {STARTUP_DEADLINE} s")


def wait_for(condition: Any, process: Grow, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.003)


def kill_at_random_moment(epoch: Epoch, process: Grow, teacher: RecordingTeacher,
                          reader: StoreReader) -> None:
    if epoch.mode == "after_first_request":
        # Requests of this grow reach the server only once its cached replies are replayed: the round is live.
        wait_for(lambda: len(teacher.received) > epoch.received_before, process)
    elif epoch.mode == "after_commit":
        wait_for(lambda: reader.rounds() > epoch.rounds_before, process)
    time.sleep(epoch.delay)
    if process.poll() is None:
        process.kill()
    else:
        epoch.killed = False
    process.wait()


def check_consistent(reader: StoreReader, out: Path, epoch: Epoch) -> None:
    """What any kill must leave: an intact store, whole rounds only, and an export equal to some committed state."""
    assert reader.query("PRAGMA integrity_check") in ([], [("ok",)])
    tasks = reader.query("SELECT t.id, t.instruction, t.round, count(i.position) FROM tasks t"
                         " LEFT JOIN instances i ON i.task_id = t.id WHERE t.origin = 'generated'"
                         " GROUP BY t.id ORDER BY t.id")
    rounds = [row[0] for row in reader.query("SELECT round FROM rounds ORDER BY round")]
    assert rounds == list(range(1, len(rounds) + 1)), f"epoch {epoch.number}: rounds {rounds}"
    assert len(tasks) <= TARGET
    assert len({text for _, text, _, _ in tasks}) == len(tasks)
    assert all(count >= 1 for *_, count in tasks), f"epoch {epoch.number}: a task without instances"
    assert {round_ for _, _, round_, _ in tasks} <= set(rounds)
    export = out / "alpaca_data.json"
    if not export.exists():  # every grow so far was killed before its first export
        epoch.export_lag = len(tasks)
        return
    # One row per instance: the tasks in the export are its distinct instructions, in order.
    exported = list(dict.fromkeys(item["instruction"] for item in json.loads(export.read_text(encoding="utf-8"))))
    stored = [text for _, text, _, _ in tasks]
    # Atomic export: the file is never torn, and always the pool exactly as some round left it.
    per_round = Counter(round_ for _, _, round_, _ in tasks)
    boundaries = {sum(per_round[r] for r in rounds[:n]) for n in range(len(rounds) + 1)}
    assert exported == stored[:len(exported)], f"epoch {epoch.number}: export is not a prefix of the store"
    assert len(exported) in boundaries, f"epoch {epoch.number}: export holds a partial round"
    epoch.export_lag = len(stored) - len(exported)


def plan_epoch(number: int, rng: random.Random) -> Epoch:
    roll = rng.random()
    if roll < 0.2:  # while the store opens, the indexes are rebuilt, or cached rounds are replayed
        return Epoch(number, "after_lock", rng.uniform(0.0, 0.3))
    if roll < 0.45:  # in the export, or as the next round commits
        return Epoch(number, "after_commit", rng.uniform(0.0, 0.01))
    return Epoch(number, "after_first_request", rng.uniform(0.0, ROUND_SECONDS))


def test_twenty_sigkills_lose_nothing_duplicate_nothing_and_pay_nothing_twice(tmp_path: Path) -> None:
    out, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(RNG_SEED)
    reader = StoreReader(out)
    teacher = RecordingTeacher(FakeTeacherConfig(seed=5, latency=LATENCY))
    epochs: list[Epoch] = []
    with serving(teacher) as base_url, launcher() as forks:
        for number in range(KILLS):
            epoch = plan_epoch(number, rng)
            epochs.append(epoch)
            epoch.stored_before, epoch.rows_before = reader.stored_prompts(), reader.reply_rows()
            epoch.rounds_before, epoch.received_before = reader.rounds(), len(teacher.received)
            teacher.epoch = epoch.number
            log = logs / f"{epoch.number}.txt"
            process = Grow(forks, grow_argv(base_url, out), log)
            wait_until_working(process, out, log)
            kill_at_random_moment(epoch, process, teacher, reader)
            assert epoch.killed, f"grow finished before kill {number + 1}: raise TARGET\n{log.read_text()}"
            teacher.settle()
            epoch.rows_after, epoch.rounds_after = reader.reply_rows(), reader.rounds()
            check_consistent(reader, out, epoch)
        final = Epoch(len(epochs), "finish", 0.0, killed=False)
        final.stored_before, final.rows_before = reader.stored_prompts(), reader.reply_rows()
        final.rounds_before = reader.rounds()
        teacher.epoch = final.number
        log = logs / f"{final.number}.txt"
        with open(log, "wb") as stream:
            finished = subprocess.run([sys.executable, "-m", "selfinstruct", *grow_argv(base_url, out)],
                                      stdout=stream, stderr=subprocess.STDOUT, env=GROW_ENV, timeout=120)
        assert finished.returncode == 0, log.read_text()
        teacher.settle()
        final.rows_after, final.rounds_after = reader.reply_rows(), reader.rounds()
        epochs.append(final)

    summary = "\n".join(f"{e.number:2d} {e.mode:20s} delay={e.delay:.3f} rounds {e.rounds_before}->"
                        f"{e.rounds_after} export_lag={e.export_lag}" for e in epochs)
    print(summary)
    _assert_complete(out, reader)
    _assert_nothing_paid_twice(epochs, teacher.received, summary)


def _assert_complete(out: Path, reader: StoreReader) -> None:
    examples = json.loads((out / "alpaca_data.json").read_text(encoding="utf-8"))
    assert len({example["instruction"] for example in examples}) == TARGET  # tasks; each instance is a row
    assert reader.query("SELECT count(*) FROM tasks WHERE origin = 'generated'") == [(TARGET,)]
    assert reader.query("SELECT count(*) FROM dead_letters") == [(0,)]
    result = CliRunner().invoke(app, ["verify", "--out", str(out)], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "sound" in result.output, result.output


def _assert_nothing_paid_twice(epochs: list[Epoch], received: list[tuple[int, str]], summary: str) -> None:
    by_epoch: dict[int, list[str]] = {}
    for number, prompt in received:
        by_epoch.setdefault(number, []).append(prompt)
    for epoch in epochs:
        prompts = by_epoch.get(epoch.number, [])
        resent = [prompt for prompt in prompts if prompt in epoch.stored_before]
        assert not resent, f"epoch {epoch.number} re-sent {len(resent)} stored request(s): {resent[0][-120:]!r}"
        repeated = len(prompts) - len(set(prompts))
        wasted = len(prompts) - (epoch.rows_after - epoch.rows_before)
        allowed = (CONCURRENCY if epoch.killed else 0) + repeated
        assert 0 <= wasted <= allowed, (
            f"epoch {epoch.number} ({epoch.mode}): {len(prompts)} requests, "
            f"{epoch.rows_after - epoch.rows_before} replies stored, {repeated} repeated\n{summary}"
        )


def test_identical_requests_in_flight_together_are_sent_once(tmp_path: Path) -> None:
    teacher = RecordingTeacher(FakeTeacherConfig(seed=1, latency=0.05))
    request = TeacherRequest(stage="classify", prompt=render_classify_prompt("Is the review positive?"),
                             decoding=build_config({}).classify_decoding)

    async def ask_twice(base_url: str) -> list[TeacherReply | None]:
        client = OpenAITeacher(base_urls=[base_url], model="fake-teacher", concurrency=CONCURRENCY)
        try:
            with Store.open(tmp_path) as store:
                return await CachedTeacher(client, store).ask_all([request, request])
        finally:
            await client.close()

    with serving(teacher) as base_url:
        replies = asyncio.run(ask_twice(base_url))
    assert replies[0] is not None and replies[0].text == replies[1].text
    assert len(teacher.received) == 1
