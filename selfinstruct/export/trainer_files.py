"""What the trainers besides TRL need next to our files: LLaMA-Factory's dataset_info.json, an axolotl datasets block.

Both only describe files an export already wrote in the run directory; neither changes a row. The shapes follow
each tool's documented schema: LLaMA-Factory reads Alpaca columns by name and OpenAI-style messages as
`formatting: sharegpt` with `tags` naming our role and content keys (its defaults are ShareGPT's
`from`/`value`/`human`/`gpt`); axolotl reads `type: alpaca` and `type: chat_template` with `field_messages`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.atomic import write_atomic
from .formats import ALPACA_FILE, JSONL_FILE, MESSAGES_FILE

DATASET_INFO_FILE = "dataset_info.json"

# LLaMA-Factory dataset names, one per file: the names a user puts after `dataset:` in its training YAML.
LLAMAFACTORY_NAMES = {ALPACA_FILE: "selfinstruct_alpaca", JSONL_FILE: "selfinstruct_alpaca_jsonl",
                      MESSAGES_FILE: "selfinstruct_messages"}
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
MESSAGES_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}


def dataset_info(present: list[str]) -> dict[str, dict[str, Any]]:
    """LLaMA-Factory entries for the files in `present` (names relative to the run directory, its dataset_dir)."""
    entries: dict[str, dict[str, Any]] = {}
    for name in (ALPACA_FILE, JSONL_FILE):
        if name in present:
            entries[LLAMAFACTORY_NAMES[name]] = {"file_name": name, "formatting": "alpaca",
                                                 "columns": dict(ALPACA_COLUMNS)}
    if MESSAGES_FILE in present:
        entries[LLAMAFACTORY_NAMES[MESSAGES_FILE]] = {
            "file_name": MESSAGES_FILE, "formatting": "sharegpt", "columns": {"messages": "messages"},
            "tags": dict(MESSAGES_TAGS)}
    return entries


def write_dataset_info(run_dir: Path) -> list[Path]:
    """dataset_info.json for the Alpaca and chat files present; nothing when there are none."""
    present = [name for name in LLAMAFACTORY_NAMES if (run_dir / name).is_file()]
    if not present:
        return []
    text = json.dumps(dataset_info(present), indent=2) + "\n"
    return [write_atomic(run_dir / DATASET_INFO_FILE, text)]


def axolotl_datasets(present: list[str]) -> list[str]:
    """YAML lines of an axolotl config's data part for the files in `present` (paths relative to the run directory).

    `chat_template: tokenizer_default` renders the chat rows with the model's own template.
    """
    lines = ["chat_template: tokenizer_default"] if MESSAGES_FILE in present else []
    lines.append("datasets:")
    if ALPACA_FILE in present:
        lines += [f"  - path: {ALPACA_FILE}", "    ds_type: json", "    type: alpaca"]
    if MESSAGES_FILE in present:
        lines += [f"  - path: {MESSAGES_FILE}", "    ds_type: json", "    type: chat_template",
                  "    field_messages: messages", "    message_property_mappings:", "      role: role",
                  "      content: content", "    roles_to_train: [assistant]"]
    return lines if lines[-1] != "datasets:" else []
