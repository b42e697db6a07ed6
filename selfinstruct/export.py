"""Write what trainers read. Every file is written atomically: a reader sees the old or the new file.

Formats (`export_run`), all from the store's accepted examples (first instance of each task):
alpaca    alpaca_data.json   JSON list of {instruction, input, output}, the original Alpaca release's shape
jsonl     alpaca_data.jsonl  the same rows, one JSON object per line
messages  messages.jsonl     {"messages": [user, assistant]}: the conversational shape TRL's SFTTrainer reads
text      text.jsonl         {"text": ...} rendered in the Alpaca training prompt
parquet   train.parquet, validation.parquet: a deterministic split (see `split_examples`)
Every export also writes provenance.jsonl (how each example was made) and the dataset card README.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .records import AlpacaExample
from .store import STORE_NAME, Store

ALPACA_FILE = "alpaca_data.json"
JSONL_FILE = "alpaca_data.jsonl"
MESSAGES_FILE = "messages.jsonl"
TEXT_FILE = "text.jsonl"
TRAIN_FILE = "train.parquet"
VALIDATION_FILE = "validation.parquet"
PROVENANCE_FILE = "provenance.jsonl"

FORMATS = ("alpaca", "jsonl", "messages", "text", "parquet")
ALL = "all"

# The Alpaca training prompt, verbatim: models fine-tuned on Alpaca data expect exactly these words and headers,
# so they are a fact of the format, not our prose. The without-input form drops the input sentence and section.
PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)

PROVENANCE_KEYS = ("teacher", "backend", "method", "round", "demo_ids", "prompt_hash", "is_classification",
                   "nearest", "nearest_rouge_l")


def write_atomic(path: Path, text: str) -> None:
    """Temporary file in the same directory, fsync, rename over the target."""
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Binary twin of `write_atomic` (parquet, PNG): same directory so the rename cannot cross filesystems."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_alpaca(store: Store, run_dir: Path) -> Path:
    """alpaca_data.json: a JSON list of {instruction, input, output}, like the original release."""
    records = [example.model_dump() for example in store.accepted_examples()]
    path = run_dir / ALPACA_FILE
    write_atomic(path, json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    return path


def user_content(example: AlpacaExample) -> str:
    """The user turn: the instruction, then the input after a blank line when there is one."""
    return example.instruction + ("\n\n" + example.input if example.input else "")


def to_messages(example: AlpacaExample) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "user", "content": user_content(example)},
                         {"role": "assistant", "content": example.output}]}


def to_text(example: AlpacaExample) -> str:
    """The example as one Alpaca training string: prompt plus response."""
    template = PROMPT_WITH_INPUT if example.input else PROMPT_NO_INPUT
    return template.format(instruction=example.instruction, input=example.input) + example.output


def split_examples(examples: list[AlpacaExample], val_fraction: float,
                   seed: int = 0) -> tuple[list[AlpacaExample], list[AlpacaExample]]:
    """(train, validation): validation holds the ceil(n · fraction) examples with the lowest sha256(seed, text).

    A hash, not a shuffle: the split depends on neither the order nor the pool's size, so when a run grows and is
    exported again, examples rarely move from validation to train (no leak into a model trained on the old split).
    At least one example stays in train. Both lists keep the pool's order.
    """
    count = min(math.ceil(len(examples) * val_fraction), max(len(examples) - 1, 0))

    def rank(index: int) -> str:
        text = f"{seed}\0{examples[index].instruction}\0{examples[index].input}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    held_out = set(sorted(range(len(examples)), key=rank)[:count])
    train = [example for index, example in enumerate(examples) if index not in held_out]
    return train, [example for index, example in enumerate(examples) if index in held_out]


def provenance_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per accepted example, in export order: how and when the teacher made it."""
    rows = []
    for index, record in enumerate(records):
        provenance = record.get("provenance", {})
        row: dict[str, Any] = {"index": index, "instruction": record["instruction"]}
        row |= {key: provenance.get(key) for key in PROVENANCE_KEYS}
        row["is_classification"] = bool(record.get("is_classification", provenance.get("is_classification")))
        row |= {"instances": len(record.get("instances", [])), "created": record.get("created")}
        rows.append(row)
    return rows


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def parquet_bytes(examples: list[AlpacaExample]) -> bytes:
    """Three string columns; the explicit schema keeps an empty split readable."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:  # an optional dependency until pyproject lists it
        raise ConfigError("--format parquet", None, "pyarrow installed (pip install pyarrow)", str(err)) from None
    schema = pa.schema([("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())])
    table = pa.Table.from_pylist([example.model_dump() for example in examples], schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def resolve_formats(formats: Iterable[str]) -> list[str]:
    """Known format names in canonical order; "all" means every one; "alpaca,jsonl" names two."""
    wanted = {part.strip().lower() for name in formats for part in name.split(",") if part.strip()}
    unknown = wanted - set(FORMATS) - {ALL}
    if unknown or not wanted:
        raise ConfigError("--format", None, f"one or more of {', '.join(FORMATS)} or {ALL}",
                          ", ".join(sorted(unknown)) or "nothing")
    return list(FORMATS) if ALL in wanted else [name for name in FORMATS if name in wanted]


def _write_format(name: str, examples: list[AlpacaExample], run_dir: Path,
                  val_fraction: float, seed: int) -> list[Path]:
    rows = [example.model_dump() for example in examples]
    if name == "alpaca":
        write_atomic(run_dir / ALPACA_FILE, json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return [run_dir / ALPACA_FILE]
    if name == "parquet":
        train, validation = split_examples(examples, val_fraction, seed)
        write_atomic_bytes(run_dir / TRAIN_FILE, parquet_bytes(train))
        write_atomic_bytes(run_dir / VALIDATION_FILE, parquet_bytes(validation))
        return [run_dir / TRAIN_FILE, run_dir / VALIDATION_FILE]
    files = {"jsonl": (JSONL_FILE, rows), "messages": (MESSAGES_FILE, [to_messages(e) for e in examples]),
             "text": (TEXT_FILE, [{"text": to_text(e)} for e in examples])}
    filename, lines = files[name]
    write_atomic(run_dir / filename, jsonl_text(lines))
    return [run_dir / filename]


def export_run(run_dir: Path, formats: Iterable[str], val_fraction: float = 0.02, seed: int = 0) -> list[Path]:
    """Write the chosen formats, provenance.jsonl and the dataset card README.md; return every path written."""
    names = resolve_formats(formats)
    if not 0 <= val_fraction < 1:
        raise ConfigError("--val-fraction", None, "a fraction in [0, 1)", str(val_fraction))
    if not (run_dir / STORE_NAME).is_file():
        raise InputError(str(run_dir), None, f"a run directory holding {STORE_NAME}", "no store there")
    with Store.open(run_dir) as store:
        examples = store.accepted_examples()
        records = store.generated_records()
    written = [path for name in names for path in _write_format(name, examples, run_dir, val_fraction, seed)]
    write_atomic(run_dir / PROVENANCE_FILE, jsonl_text(provenance_rows(records)))
    from .card import write_card  # the card reads the files just written, and card imports this module

    return [*written, run_dir / PROVENANCE_FILE, write_card(run_dir)]
