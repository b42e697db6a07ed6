"""Write what trainers read, from a list of `ExampleRow`s; every file through the one atomic writer.

Formats (`write_exports`), by default every instance of every accepted task as one row (as Self-Instruct's
`all_generated_instances` does; `instances` limits it):
alpaca    alpaca_data.json   JSON list of {instruction, input, output}, the original Alpaca release's shape
jsonl     alpaca_data.jsonl  the same rows, one JSON object per line
messages  messages.jsonl     {"messages": [system?, user, assistant]}: the conversational shape TRL's SFTTrainer reads
prompt_completion  prompt_completion.jsonl  {"prompt": [system?, user], "completion": [assistant]}: conversational
          prompt-completion; TRL's SFTTrainer then computes the loss on the completion only
text      text.jsonl         {"text": ...} rendered in the Alpaca training prompt
parquet   train.parquet, validation.parquet: a deterministic split by group (see `split_rows`)
`system` (optional) opens every chat row with a system turn. Beside chat and Alpaca files an export writes
LLaMA-Factory's dataset_info.json (`trainer_files`). Every export also writes provenance.jsonl (how each row was
made) and the dataset card README.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.atomic import write_atomic
from ..core.errors import ConfigError
from ..core.records import PROVENANCE_KEYS, AlpacaExample, ExampleRow
from ..core.store import Store
from ..judge.scores import exported_rows

ALPACA_FILE = "alpaca_data.json"
JSONL_FILE = "alpaca_data.jsonl"
MESSAGES_FILE = "messages.jsonl"
PROMPT_COMPLETION_FILE = "prompt_completion.jsonl"
TEXT_FILE = "text.jsonl"
TRAIN_FILE = "train.parquet"
VALIDATION_FILE = "validation.parquet"
PROVENANCE_FILE = "provenance.jsonl"
CARD_FILE = "README.md"

FORMATS = ("alpaca", "jsonl", "messages", "prompt_completion", "text", "parquet")
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

def export_alpaca(store: Store, run_dir: Path) -> Path:
    """alpaca_data.json from the store, every instance a row (within the score filter a `--min-score` export
    recorded): the file a grow keeps up to date."""
    return write_format("alpaca", exported_rows(store)[0], run_dir)[0]


def user_content(example: AlpacaExample) -> str:
    """The user turn: the instruction, then the input after a blank line when there is one."""
    return example.instruction + ("\n\n" + example.input if example.input else "")


Turns = list[dict[str, str]]


def prompt_turns(example: AlpacaExample, system: str | None = None) -> Turns:
    """The conversation up to the answer: the system turn when there is one, then the user turn."""
    turns = [{"role": "system", "content": system}] if system else []
    return [*turns, {"role": "user", "content": user_content(example)}]


def to_messages(example: AlpacaExample, system: str | None = None) -> dict[str, Turns]:
    return {"messages": [*prompt_turns(example, system), {"role": "assistant", "content": example.output}]}


def to_prompt_completion(example: AlpacaExample, system: str | None = None) -> dict[str, Turns]:
    """Conversational prompt-completion: TRL masks the prompt turns out of the loss by default."""
    return {"prompt": prompt_turns(example, system), "completion": [{"role": "assistant", "content": example.output}]}


def to_text(example: AlpacaExample) -> str:
    """The example as one Alpaca training string: prompt plus response."""
    template = PROMPT_WITH_INPUT if example.input else PROMPT_NO_INPUT
    return template.format(instruction=example.instruction, input=example.input) + example.output


def split_rows(rows: list[ExampleRow], val_fraction: float,
               seed: int = 0) -> tuple[list[ExampleRow], list[ExampleRow]]:
    """(train, validation), deciding by group: the rows of one group (a task's instances) land on one side.

    Rows whose source fixed a split keep it ("train", or any other name: validation). The others: validation takes whole groups in the order of
    sha256(seed, the group's first instruction and input) until it holds ceil(n · fraction) rows. A hash, not a
    shuffle: the split depends on neither the order nor the pool's size, so when a run grows and is exported
    again, rows rarely move from validation to train (no leak into a model trained on the old split). At least
    one group stays in train. Both lists keep the rows' order.
    """
    free = [row for row in rows if row.split is None]
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(free):
        groups.setdefault(row.group, []).append(index)

    def rank(group: str) -> str:
        first = free[groups[group][0]]
        return hashlib.sha256(f"{seed}\0{first.instruction}\0{first.input}".encode("utf-8")).hexdigest()

    wanted = math.ceil(len(free) * val_fraction)
    held: set[int] = set()
    for group in sorted(groups, key=rank)[: max(len(groups) - 1, 0)]:
        if len(held) >= wanted:
            break
        held.update(groups[group])
    held_ids = {id(free[index]) for index in held}
    train = [row for row in rows if (row.split is None and id(row) not in held_ids) or row.split == "train"]
    validation = [row for row in rows if id(row) in held_ids
                  or (row.split is not None and row.split != "train")]
    return train, validation


def split_examples(examples: list[AlpacaExample], val_fraction: float,
                   seed: int = 0) -> tuple[list[AlpacaExample], list[AlpacaExample]]:
    """`split_rows` for plain examples, each its own group."""
    rows = [ExampleRow(**example.model_dump(), group=str(index)) for index, example in enumerate(examples)]
    train, validation = split_rows(rows, val_fraction, seed)
    return [row.alpaca() for row in train], [row.alpaca() for row in validation]


def provenance_rows(rows: list[ExampleRow]) -> list[dict[str, Any]]:
    """One line per exported row, in export order: how and when it was made."""
    lines = []
    for index, row in enumerate(rows):
        line: dict[str, Any] = {"index": index, "instruction": row.instruction, "group": row.group}
        line |= {key: row.provenance.get(key) for key in PROVENANCE_KEYS}
        line |= {key: value for key, value in row.provenance.items() if key not in line}
        lines.append(line)
    return lines


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def parquet_bytes(examples: list[AlpacaExample]) -> bytes:
    """Three string columns; the explicit schema keeps an empty split readable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

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


def resolve_instances(value: str | int | None) -> int | None:
    """`--instances`: "all" (None: every instance), "first" (1) or a positive count."""
    if value is None or str(value).strip().lower() == "all":
        return None
    text = str(value).strip().lower()
    if text == "first":
        return 1
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ConfigError("--instances", None, "all, first or a positive number of instances per task", str(value))


def write_format(name: str, rows: list[ExampleRow], run_dir: Path, val_fraction: float = 0.02, seed: int = 0,
                 system: str | None = None) -> list[Path]:
    """Write one format's file(s) from `rows`; return the paths."""
    examples = [row.alpaca() for row in rows]
    if name == "alpaca":
        records = [example.model_dump() for example in examples]
        return [write_atomic(run_dir / ALPACA_FILE, json.dumps(records, ensure_ascii=False, indent=2) + "\n")]
    if name == "parquet":
        train, validation = split_rows(rows, val_fraction, seed)
        return [write_atomic(run_dir / TRAIN_FILE, parquet_bytes([row.alpaca() for row in train])),
                write_atomic(run_dir / VALIDATION_FILE, parquet_bytes([row.alpaca() for row in validation]))]
    files = {"jsonl": (JSONL_FILE, lambda: [example.model_dump() for example in examples]),
             "messages": (MESSAGES_FILE, lambda: [to_messages(example, system) for example in examples]),
             "prompt_completion": (PROMPT_COMPLETION_FILE,
                                   lambda: [to_prompt_completion(example, system) for example in examples]),
             "text": (TEXT_FILE, lambda: [{"text": to_text(example)} for example in examples])}
    filename, lines = files[name]
    return [write_atomic(run_dir / filename, jsonl_text(lines()))]
