"""A grow killed with SIGKILL continues from its store when run again: no loss, no duplicates."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from selfinstruct.core.store import STORE_NAME
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


def _grow(base_url: str, out: Path, target: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "selfinstruct.cli", "grow", "--out", str(out), "--target", str(target),
            "--backend", "openai", "--base-url", base_url, "--prompts-per-round", "2"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "OPENAI_API_KEY": ""})


def _committed_rounds(out: Path) -> int:
    try:
        with sqlite3.connect(out / STORE_NAME, timeout=5) as db:
            return db.execute("SELECT count(*) FROM rounds").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeTeacher(FakeTeacherConfig(seed=3, latency=0.05)) as teacher:
        process = _grow(teacher.base_url, out, target=30)
        deadline = time.monotonic() + 60
        while _committed_rounds(out) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = _committed_rounds(out)
        assert 1 <= killed_at
        finished = _grow(teacher.base_url, out, target=30)
        output, _ = finished.communicate(timeout=120)
        assert finished.returncode == 0, output.decode()
    examples = json.loads((out / "alpaca_data.json").read_text())
    assert len({example["instruction"] for example in examples}) == 30  # tasks; each instance is a row
    with sqlite3.connect(out / STORE_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rounds = [row[0] for row in db.execute("SELECT round FROM rounds ORDER BY round")]
    assert rounds == list(range(1, len(rounds) + 1))
