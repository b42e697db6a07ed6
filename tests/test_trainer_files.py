"""Chat exports with a system turn, LLaMA-Factory's dataset_info.json and the card's axolotl block.

These check our files against each trainer's documented schema; tests/test_trainer_trl.py trains on them for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from selfinstruct.export.formats import CARD_FILE
from selfinstruct.core.errors import ConfigError
from selfinstruct.export.formats import ALPACA_FILE, MESSAGES_FILE, PROMPT_COMPLETION_FILE
from selfinstruct.publish import export_run
from selfinstruct.export.trainer_files import DATASET_INFO_FILE, MESSAGES_TAGS, axolotl_datasets
from tests.test_export import EXAMPLES, make_run

datasets = pytest.importorskip("datasets", reason="the datasets package (dev dependency) reads the exports back")
SYSTEM = "You are a careful assistant. Answer briefly."


def _load(path: Path, cache: Path) -> list[dict]:
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache)).to_list()


def test_prompt_completion_rows_are_conversational_and_carry_the_system_turn(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["messages", "prompt_completion"], system=SYSTEM)
    pairs = _load(run / PROMPT_COMPLETION_FILE, tmp_path / "hf")
    chats = _load(run / MESSAGES_FILE, tmp_path / "hf")
    assert len(pairs) == len(chats) == len(EXAMPLES)
    for pair, chat, example in zip(pairs, chats, EXAMPLES):
        assert [turn["role"] for turn in pair["prompt"]] == ["system", "user"]
        assert pair["prompt"][0]["content"] == SYSTEM
        assert pair["completion"] == [{"role": "assistant", "content": example.output}]
        # The same conversation in both files: prompt + completion is the messages row.
        assert pair["prompt"] + pair["completion"] == chat["messages"]
    summarize = pairs[1]["prompt"][1]["content"]
    assert summarize == "Summarize the paragraph in one sentence.\n\nRain fell all day.\nIt stopped."


def test_without_system_no_system_turn_and_a_blank_one_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["prompt_completion"])
    first = json.loads((run / PROMPT_COMPLETION_FILE).read_text(encoding="utf-8").splitlines()[0])
    assert [turn["role"] for turn in first["prompt"]] == ["user"]
    before = (run / PROMPT_COMPLETION_FILE).read_bytes()
    with pytest.raises(ConfigError, match="--system"):
        export_run(run, ["prompt_completion"], system="  ")
    assert (run / PROMPT_COMPLETION_FILE).read_bytes() == before


def test_dataset_info_names_our_columns_and_tags(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["alpaca", "messages"], system=SYSTEM)
    info = json.loads((run / DATASET_INFO_FILE).read_text(encoding="utf-8"))
    assert info["selfinstruct_alpaca"] == {"file_name": ALPACA_FILE, "formatting": "alpaca", "columns": {
        "prompt": "instruction", "query": "input", "response": "output"}}
    chat = info["selfinstruct_messages"]
    assert chat["formatting"] == "sharegpt" and chat["columns"] == {"messages": "messages"}
    assert "selfinstruct_alpaca_jsonl" not in info  # only files that exist get an entry
    # Every tag value is a key or role our rows really use (LLaMA-Factory's defaults are from/value/human/gpt).
    rows = _load(run / MESSAGES_FILE, tmp_path / "hf")
    used_keys = {key for row in rows for turn in row["messages"] for key in turn}
    used_roles = {turn["role"] for row in rows for turn in row["messages"]}
    assert {chat["tags"]["role_tag"], chat["tags"]["content_tag"]} == used_keys
    assert {chat["tags"][tag] for tag in ("user_tag", "assistant_tag", "system_tag")} == used_roles
    assert chat["tags"] == MESSAGES_TAGS
    for entry in info.values():
        assert (run / entry["file_name"]).is_file()


def test_card_holds_an_axolotl_block_that_parses_and_points_at_our_files(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["alpaca", "messages", "prompt_completion"], system=SYSTEM)
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    assert "## Training" in card and json.dumps(SYSTEM) in card and "dataset: selfinstruct_messages" in card
    block = card.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(block)
    assert config["chat_template"] == "tokenizer_default"  # the model's own template renders the chat rows
    assert config == yaml.safe_load("\n".join(axolotl_datasets([ALPACA_FILE, MESSAGES_FILE])))
    alpaca, chat = config["datasets"]
    assert alpaca == {"path": ALPACA_FILE, "ds_type": "json", "type": "alpaca"}
    assert chat["type"] == "chat_template" and chat["field_messages"] == "messages"
    assert chat["message_property_mappings"] == {"role": "role", "content": "content"}
    assert chat["roles_to_train"] == ["assistant"]
    for dataset in config["datasets"]:
        assert (run / dataset["path"]).is_file()
    assert f"data_files=\"{DATASET_INFO_FILE}\"" not in card
