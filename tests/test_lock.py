"""The run lock: one grow per run directory, refused at once with exit 4, and taken over after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfinstruct.core.errors import StoreLocked
from selfinstruct.core.lock import LOCK_NAME, RunLock
from selfinstruct.core.store import STORE_NAME
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


def test_a_second_writer_is_refused_and_told_who_holds_the_run(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        with pytest.raises(StoreLocked, match=rf"is in use by process {os.getpid()}; .* use another --out"):
            RunLock(tmp_path).acquire()
        assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())
    # Released: the next writer gets it, and a finished run leaves no PID behind.
    assert (tmp_path / LOCK_NAME).read_bytes() == b""
    with RunLock(tmp_path):
        pass


def test_readers_share_and_exclude_writers(tmp_path: Path) -> None:
    with RunLock(tmp_path, shared=True), RunLock(tmp_path, shared=True):
        with pytest.raises(StoreLocked, match="in use by another process"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        with pytest.raises(StoreLocked, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path, shared=True).acquire()


def test_release_is_idempotent_and_acquire_reentrant(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    lock.acquire()
    lock.acquire()
    assert lock.held
    lock.release()
    lock.release()
    assert not lock.held


def test_a_child_process_does_not_inherit_the_lock(tmp_path: Path) -> None:
    # A teacher server started by the grow outlives it for a moment (and forever if it ignores SIGTERM).
    lock = RunLock(tmp_path)
    lock.acquire()
    child = subprocess.Popen(["sleep", "30"], close_fds=False)
    try:
        lock.release()
        with RunLock(tmp_path):
            assert child.poll() is None
    finally:
        child.kill()
        child.wait()


# -- real processes ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow_teacher() -> Iterator[FakeTeacher]:
    # With a target of 1000 the first grow runs for minutes at this latency: it holds the lock while we look.
    with FakeTeacher(FakeTeacherConfig(seed=2, latency=0.05)) as teacher:
        yield teacher


def _grow_argv(teacher: FakeTeacher, out: Path, *flags: str) -> list[str]:
    return ["grow", "--backend", "openai", "--base-url", teacher.base_url, "--out", str(out),
            "--prompts-per-round", "2", *flags]


# Imports the CLI, then waits for a line on stdin before running it as `python -m selfinstruct` would: the
# processes of this test pay Python's start-up together, in parallel, and each runs the moment it is told to.
ARMED = ("import sys, selfinstruct.cli; sys.stdin.readline(); "
         "selfinstruct.cli.app(sys.argv[1:], prog_name='selfinstruct')")


def _armed(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", ARMED, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OPENAI_API_KEY": "", "COLUMNS": "300"})


def _fire(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
    assert process.stdin
    process.stdin.write("go\n")
    process.stdin.flush()
    return process


def _wait_for_lock(process: subprocess.Popen[str], out: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        if (out / LOCK_NAME).is_file() and (out / LOCK_NAME).read_text().strip() == str(process.pid):
            return
        time.sleep(0.02)
    raise AssertionError("the first grow never took the run lock")


def test_second_grow_exits_4_at_once_and_a_killed_holder_is_taken_over(slow_teacher: FakeTeacher,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _fire(_armed(_grow_argv(slow_teacher, out, "--target", "1000")))
    second = _armed(_grow_argv(slow_teacher, out, "--target", "1000"))
    third = _armed(_grow_argv(slow_teacher, out, "--target", "1000", "--max-rounds", "1"))
    try:
        _wait_for_lock(first, out)
        output, _ = _fire(second).communicate(timeout=60)
        # "At once": it did not wait for the first grow, which is still running.
        assert first.poll() is None
        assert second.returncode == 4, output
        assert f"is in use by process {first.pid}" in output
        assert "Traceback" not in output
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The kernel dropped the killed grow's flock; its PID is still in the file, and does not matter.
    assert (out / LOCK_NAME).read_text() == str(first.pid)
    assert (out / STORE_NAME).is_file()
    output, _ = _fire(third).communicate(timeout=120)
    assert third.returncode == 0, output
    assert "Traceback" not in output
    assert (out / LOCK_NAME).read_bytes() == b""
