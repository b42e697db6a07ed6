"""LLaMA-Factory's own loader reads a run directory through our dataset_info.json (Alpaca and chat entries).

The loader runs in its own venv (`.ci/llamafactory_env.sh`) as tests/llamafactory_load.py: LLaMA-Factory's
argument parser, dataset_info reader, format converters and SFT tokenization, as `llamafactory-cli train` uses
them. Asserts every exported row arrives, with the system prompt, the user turn and the answer in place, and the
labels on the answer only. Skips, saying what to run, when the venv or the model directory is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.export.formats import ALPACA_FILE, user_content
from selfinstruct.publish import export_run
from selfinstruct.core.records import AlpacaExample
from tests.cached_venvs import MODEL_DIR, NEEDS_MODEL, needs_venv, run_json, venv_python
from tests.test_export import make_run

LF_PYTHON = venv_python("llamafactory")
SCRIPT = Path(__file__).with_name("llamafactory_load.py")
SYSTEM = "You are a careful assistant."

pytestmark = [pytest.mark.slow, needs_venv("llamafactory"), NEEDS_MODEL]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = make_run(tmp_path_factory.mktemp("lf") / "run")
    export_run(out, ["alpaca", "messages"], system=SYSTEM)
    return out


def load(run: Path, dataset: str, tmp_path: Path) -> list[dict]:
    result = tmp_path / "result.json"
    command = [str(LF_PYTHON), str(SCRIPT), "--run", str(run), "--dataset", dataset, "--model", str(MODEL_DIR),
               "--out", str(result)]
    return run_json(command, result, env={"HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"})["rows"]


def exported(run: Path) -> list[AlpacaExample]:
    return [AlpacaExample(**row) for row in json.loads((run / ALPACA_FILE).read_text(encoding="utf-8"))]


def test_chat_entry_keeps_system_user_and_answer_with_labels_on_the_answer(run: Path, tmp_path: Path) -> None:
    rows = load(run, "selfinstruct_messages", tmp_path)
    examples = exported(run)
    assert len(rows) == len(examples)
    for row, example in zip(rows, examples):
        assert row["text"].startswith(f"System: {SYSTEM}")  # the system turn became LLaMA-Factory's system
        assert f"Human: {user_content(example)}" in row["text"]
        assert row["labelled"] == example.output + "<|im_end|>\n"


def test_alpaca_entry_maps_instruction_input_and_output(run: Path, tmp_path: Path) -> None:
    rows = load(run, "selfinstruct_alpaca", tmp_path)
    examples = exported(run)
    assert len(rows) == len(examples)
    for row, example in zip(rows, examples):
        # LLaMA-Factory joins instruction and input with one newline (our chat rows use a blank line).
        joined = example.instruction + ("\n" + example.input if example.input else "")
        assert f"Human: {joined}<|im_end|>" in row["text"]
        assert row["labelled"] == example.output + "<|im_end|>\n"
        assert SYSTEM not in row["text"]  # the Alpaca file has no system column
