"""axolotl's own loader reads the `datasets:` block the card prints, on the files of the run.

The loader runs in its own venv (`.ci/axolotl_env.sh`) as tests/axolotl_load.py: axolotl's `SFTDataset` schema,
`load_dataset_with_config` and the prompt strategy of each `type`. Asserts every exported row arrives, the chat
entry keeps the system prompt, the user turn and the answer, and the labels keep the answer only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.export.formats import CARD_FILE
from selfinstruct.export.formats import ALPACA_FILE, MESSAGES_FILE, user_content
from selfinstruct.publish import export_run
from selfinstruct.core.records import AlpacaExample
from tests.cached_venvs import MODEL_DIR, NEEDS_MODEL, needs_venv, run_json, venv_python
from tests.test_export import make_run

AXOLOTL_PYTHON = venv_python("axolotl")
SCRIPT = Path(__file__).with_name("axolotl_load.py")
SYSTEM = "You are a careful assistant."

pytestmark = [pytest.mark.slow, needs_venv("axolotl"), NEEDS_MODEL]


def test_the_cards_axolotl_block_loads_every_row_with_labels_on_the_answer(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["alpaca", "messages"], system=SYSTEM)
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    block = tmp_path / "block.yaml"
    block.write_text(card.split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    result = tmp_path / "result.json"
    command = [str(AXOLOTL_PYTHON), str(SCRIPT), "--block", str(block), "--model", str(MODEL_DIR),
               "--out", str(result)]
    loaded = run_json(command, result, env={"HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1"}, cwd=run)
    examples = [AlpacaExample(**row) for row in json.loads((run / ALPACA_FILE).read_text(encoding="utf-8"))]
    chat, alpaca = loaded[MESSAGES_FILE], loaded[ALPACA_FILE]
    assert len(chat) == len(alpaca) == len(examples)
    for chat_row, alpaca_row, example in zip(chat, alpaca, examples):
        assert chat_row["text"].startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>")
        assert f"<|im_start|>user\n{user_content(example)}<|im_end|>" in chat_row["text"]
        assert chat_row["labelled"].startswith(example.output) and example.instruction not in chat_row["labelled"]
        assert f"### Instruction:\n{example.instruction}\n\n" in alpaca_row["text"]
        assert alpaca_row["labelled"].startswith(example.output)
        assert "### Instruction" not in alpaca_row["labelled"]
