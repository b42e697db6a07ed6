"""Batch mode through real `vllm run-batch` on the CPU (SmolLM2-135M-Instruct in bf16): a grow killed with
SIGKILL while its run-batch process runs, then resumed. The run-batch process outlives the killed grow;
the resumed grow waits for that same process and reads its output, so no request runs twice: each
custom_id appears in one input file and one output file line.

Needs the vLLM CPU venv and the safetensors model directory (.ci/vllm_env.sh builds both); skipped with
the reason when they are absent. Slow: each batch loads the model (about a minute here).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from selfinstruct.core.store import STORE_NAME, Store
from selfinstruct.teacher.batch_vllm import PID_PREFIX, processes_with_argument
from tests.cached_venvs import MODEL_DIR, NEEDS_MODEL, needs_venv, venv_python

VLLM_PYTHON = venv_python("vllm")
# The CPU settings measured for this machine (issue 14): loopback message queue, 2 GiB of KV cache.
VLLM_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_HOST_IP": "127.0.0.1", "HF_HUB_OFFLINE": "1",
                "VLLM_NO_USAGE_STATS": "1"}
TARGET = 3
RUN_DEADLINE = 1800.0  # seconds for a whole grow: several batches, each loading the model on a shared CPU

pytestmark = [
    pytest.mark.slow,
    needs_venv("vllm"),
    NEEDS_MODEL,
]


def _grow(out: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "selfinstruct.cli", "grow", "--out", str(out), "--target", str(TARGET),
            "--backend", "vllm", "--model", str(MODEL_DIR), "--batch", "--set", f"vllm.python={VLLM_PYTHON}",
            "--set", "vllm.dtype=bfloat16", "--set", 'vllm.extra_args=["--enforce-eager"]',
            "--set", "vllm.max_model_len=4096",
            "--prompts-per-round", "8", "--pipeline-rounds", "2"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **VLLM_CPU_ENV})


def _running_batches(out: Path) -> list[tuple[str, int]]:
    """(batch id, pid) of batches recorded as submitted whose run-batch process is running."""
    try:
        with sqlite3.connect(out / STORE_NAME, timeout=5) as db:
            rows = db.execute("SELECT id, remote_id FROM batches WHERE status = 'submitted' AND remote_id IS NOT NULL"
                              ).fetchall()
    except sqlite3.Error:
        return []
    return [(batch_id, int(remote[len(PID_PREFIX):])) for batch_id, remote in rows
            if processes_with_argument(str(out / "batches" / f"{batch_id}.output.jsonl"))]


def _log(out: Path, batch_id: str) -> str:
    path = out / "logs" / f"vllm_run_batch_{batch_id}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _custom_ids(paths: list[Path]) -> Counter[str]:
    ids: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                ids[json.loads(line)["custom_id"]] += 1
    return ids


def _stop_leftovers(out: Path) -> None:
    """A run-batch still running after the test (the grow reached its target first) is ours: stop it by id."""
    for path in (out / "batches").glob("*.input.jsonl"):
        for pid in processes_with_argument(str(path)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGTERM)


def test_run_batch_grow_killed_mid_batch_then_resumed_runs_each_request_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    started = time.monotonic()
    try:
        killed = _grow(out)
        deadline = time.monotonic() + RUN_DEADLINE
        # Killed once the first run-batch has loaded the model and is generating (its progress bar is up).
        while not (running := _running_batches(out)) or "Running batch" not in _log(out, running[0][0]):
            assert killed.poll() is None, killed.communicate()[0].decode()[-3000:]
            assert time.monotonic() < deadline, "no run-batch process started generating"
            time.sleep(0.5)
        [(batch_id, pid)] = running
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        killed_at = time.monotonic() - started
        assert processes_with_argument(str(out / "batches" / f"{batch_id}.output.jsonl")), \
            "the run-batch process outlives the grow that started it"
        resumed = _grow(out)
        output, _ = resumed.communicate(timeout=RUN_DEADLINE)
        assert resumed.returncode == 0, output.decode()[-3000:]
    finally:
        _stop_leftovers(out)
    with Store.open(out) as store:
        assert store.accepted_count() == TARGET
        batches = {batch.id: batch for batch in store.batches()}
        assert batches[batch_id].status == "collected" and batches[batch_id].remote_id == f"{PID_PREFIX}{pid}"
        collected = [batch for batch in batches.values() if batch.status == "collected"]
        assert all(batch.outcome == "completed" for batch in collected)
    inputs = _custom_ids(sorted((out / "batches").glob("*.input.jsonl")))
    outputs = _custom_ids(sorted((out / "batches").glob("*.output.jsonl")))
    assert inputs and set(inputs.values()) == {1}, "a request went into two batches"
    assert set(outputs.values()) == {1} and set(outputs) <= set(inputs), "a request ran twice"
    print(f"killed after {killed_at:.0f} s in batch {batch_id} (pid {pid}); finished after "
          f"{time.monotonic() - started:.0f} s; {len(batches)} batches, {len(inputs)} requests, {len(outputs)} run")
