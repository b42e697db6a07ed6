"""LLaMA-Factory's own data pipeline on a run directory; run by tests/test_trainer_llamafactory.py.

Runs in the LLaMA-Factory venv (`.ci/llamafactory_env.sh`):
    python tests/llamafactory_load.py --run DIR --dataset NAME --model DIR --out RESULT.json
It parses the same arguments a user's training YAML holds (`dataset_dir: DIR`, `dataset: NAME`), so
LLaMA-Factory reads our dataset_info.json, loads the file it names, converts the rows with the entry's formatting
and tags, and tokenizes them for SFT with its `default` template. RESULT.json holds, per row, the text of the
tokenized example and the text its labels keep (not -100).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

# llamafactory.data imports torchaudio at the top of its multimodal plugin, used only to read audio files. PyPI's
# torchaudio does not load beside the CPU torch (its library fails to open), and our rows hold no audio, so an
# empty module stands in while that import runs, and is removed right after.
sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer  # noqa: E402

if not getattr(sys.modules["torchaudio"], "__file__", None):
    del sys.modules["torchaudio"]

IGNORE = -100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--run", "--dataset", "--model", "--out"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    config = {"model_name_or_path": args.model, "stage": "sft", "do_train": True, "finetuning_type": "lora",
              "dataset_dir": args.run, "dataset": args.dataset, "template": "default", "cutoff_len": 512,
              "output_dir": str(Path(args.out).parent / "lf-output"), "overwrite_cache": True, "report_to": "none"}
    model_args, data_args, training_args, _, _ = get_train_args(config)
    tokenizer_module = load_tokenizer(model_args)
    tokenizer = tokenizer_module["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    data = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
    rows = []
    for example in data["train_dataset"]:
        kept = [token for token in example["labels"] if token != IGNORE]
        rows.append({"text": tokenizer.decode(example["input_ids"]), "labelled": tokenizer.decode(kept)})
    Path(args.out).write_text(json.dumps({"rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
