"""A real trainer on our files: TRL's SFTTrainer fine-tunes SmolLM2-135M-Instruct on CPU on what `export` wrote.

A pool is grown through the fake teacher's HTTP server, exported as `messages.jsonl` and `prompt_completion.jsonl`
(with a system prompt), and each file trains for 20 optimizer steps in the training venv (`.ci/train_env.sh`),
with the model converted from the bundled GGUF (`.ci/build_smollm2_hf.py`). The assertions: every step ran, the
loss fell, and the collator's labels keep exactly the assistant's answer tokens (-100 on system, user and the
template's headers). Skips, saying what to run, when the venv or the model directory is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from selfinstruct.core.config import build_config
from selfinstruct.export.formats import MESSAGES_FILE, PROMPT_COMPLETION_FILE
from selfinstruct.publish import export_run
from selfinstruct.grow import grow
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig
from tests.cached_venvs import MODEL_DIR, NEEDS_MODEL, needs_venv, run_json, venv_python

TRAIN_PYTHON = venv_python("train")
SCRIPT = Path(__file__).with_name("trl_train.py")
STEPS = 20
SYSTEM = "You are a helpful assistant. Answer the task as asked."

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),  # two short CPU fine-tunes; minutes on a quiet machine, far more on a busy one
    needs_venv("train"),
    NEEDS_MODEL,
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run grown through the fake teacher's HTTP API, exported in both chat shapes with a system prompt."""
    out = tmp_path_factory.mktemp("trl") / "run"
    with FakeTeacher(FakeTeacherConfig(seed=11)) as teacher:
        grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": out, "target": 20}))
    export_run(out, ["messages", "prompt_completion"], system=SYSTEM)
    return out


def train(data: Path, result: Path, *extra: str) -> dict:
    command = [str(TRAIN_PYTHON), str(SCRIPT), "--model", str(MODEL_DIR), "--data", str(data), "--out", str(result),
               "--steps", str(STEPS), "--max-length", "96", *extra]
    return run_json(command, result, env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}, timeout=3600)


def assert_trained(result: dict) -> None:
    assert result["steps"] == STEPS and len(result["losses"]) == STEPS
    first, last = result["losses"][:3], result["losses"][-3:]
    # Measured on the prompt-completion file: 3.97 -> 3.03 (x0.76); 0.9 leaves room for a different pool.
    assert sum(last) / 3 < 0.9 * (sum(first) / 3), result["losses"]


def assert_answer_only(result: dict, rows: list[dict]) -> None:
    """Labels keep the answer tokens the template places after the prompt, and nothing else."""
    assert result["masks"]
    for mask in result["masks"]:
        row = mask["row"]
        assert row in rows
        assert mask["kept_positions"] == mask["answer_positions"] and mask["kept_positions"]
        assert mask["labels_equal_inputs"] and mask["padding_labelled"] == 0
        answer = row["completion"][0]["content"] if "completion" in row else row["messages"][-1]["content"]
        user = (row["prompt"] if "prompt" in row else row["messages"])[1]["content"]
        # max_length may cut the answer: what is kept is the answer and its end-of-turn, or a prefix of them.
        assert (answer + "<|im_end|>\n").startswith(mask["kept_text"].rstrip("\ufffd"))
        assert SYSTEM in mask["masked_text"] and mask["masked_text"].endswith("<|im_start|>assistant\n")
        assert user[:20] in mask["masked_text"]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_prompt_completion_file_trains_with_loss_on_the_completion_only(exported: Path, tmp_path: Path) -> None:
    rows = _rows(exported / PROMPT_COMPLETION_FILE)
    assert len(rows) >= 20 and all(row["prompt"][0] == {"role": "system", "content": SYSTEM} for row in rows)
    result = train(exported / PROMPT_COMPLETION_FILE, tmp_path / "result.json")
    print(f"prompt_completion: {result['rows']} rows, losses {result['losses'][0]:.3f} -> "
          f"{result['losses'][-1]:.3f}, {result['train_seconds']} s", file=sys.stderr)
    assert result["completion_only_loss"] is True  # TRL's default for prompt-completion rows
    assert_trained(result)
    assert_answer_only(result, rows)


def test_messages_file_trains_with_assistant_only_loss(exported: Path, tmp_path: Path) -> None:
    rows = _rows(exported / MESSAGES_FILE)
    result = train(exported / MESSAGES_FILE, tmp_path / "result.json", "--assistant-only")
    print(f"messages: {result['rows']} rows, losses {result['losses'][0]:.3f} -> "
          f"{result['losses'][-1]:.3f}, {result['train_seconds']} s", file=sys.stderr)
    assert_trained(result)
    assert_answer_only(result, rows)
