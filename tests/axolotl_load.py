"""axolotl's own dataset loading and prompt strategies on the card's `datasets:` block; run by tests/test_trainer_axolotl.py.

Runs in the axolotl venv (`.ci/axolotl_env.sh`), from the run directory (the block's paths are relative to it):
    python tests/axolotl_load.py --block BLOCK.yaml --model DIR --out RESULT.json
Each entry is validated by axolotl's pydantic `SFTDataset` schema, loaded by its `load_dataset_with_config` and
tokenized by the strategy `get_dataset_wrapper` picks for its `type` (`chat_template`, `alpaca`), as `axolotl
preprocess` does. RESULT.json holds, per entry and row, the tokenized text and the text its labels keep.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from transformers import AutoTokenizer

from axolotl.utils.data.shared import load_dataset_with_config
from axolotl.utils.data.wrappers import get_dataset_wrapper
from axolotl.utils.dict import DictDefault
from axolotl.utils.schemas.datasets import SFTDataset

IGNORE = -100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--block", "--model", "--out"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    block = yaml.safe_load(Path(args.block).read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    cfg = DictDefault({"chat_template": block.get("chat_template"), "sequence_len": 512, "train_on_inputs": False})
    result = {}
    for entry in block["datasets"]:
        checked = SFTDataset(**entry).model_dump(exclude_none=True)  # axolotl's schema; raises on a wrong key
        config = DictDefault(checked)
        raw = load_dataset_with_config(config, use_auth_token=False)
        wrapped, _ = get_dataset_wrapper(config, tokenizer, cfg, config.type.split(":")[0], raw)
        rows = []
        for example in wrapped:
            kept = [token for token in example["labels"] if token != IGNORE]
            rows.append({"text": tokenizer.decode(example["input_ids"]), "labelled": tokenizer.decode(kept)})
        result[entry["path"]] = rows
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
