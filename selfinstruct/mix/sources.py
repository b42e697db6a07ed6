"""Rows of one mix source: a run directory of either route (its store), or an Alpaca / messages file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..core.records import ExampleRow
from ..core.store import STORE_NAME, Store
from .config import SourceConfig


def load_source(source: SourceConfig) -> list[ExampleRow]:
    """The source's rows with `mix_source` and `synthetic` in their provenance; groups prefixed by its label."""
    path = source.path
    if path.is_dir():
        if not (path / STORE_NAME).is_file():
            raise DataError(str(path), "path", f"a run directory holding {STORE_NAME}, or a data file", "no store")
        with Store.open(path) as store:
            rows = store.example_rows()
    elif path.is_file():
        rows = _file_rows(path)
    else:
        raise DataError(str(path), "path", "a run directory or an Alpaca JSON/JSONL or messages file", "nothing")
    return [_labelled(row, source) for row in rows]


def _labelled(row: ExampleRow, source: SourceConfig) -> ExampleRow:
    route = row.provenance.get("route", "grow")
    synthetic = source.synthetic if source.synthetic is not None else route != "convert"
    provenance = {**row.provenance, "route": route, "mix_source": source.label, "synthetic": synthetic}
    return row.model_copy(update={"group": f"{source.label}/{row.group}", "provenance": provenance})


def _file_rows(path: Path) -> list[ExampleRow]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}", None, "a JSON list of Alpaca rows", err.msg) from None
        if not isinstance(items, list):
            raise DataError(str(path), None, "a JSON list of Alpaca rows", type(items).__name__)
        return [_row(item, path, n) for n, item in enumerate(items, 1)]
    rows = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): a text may hold U+2028
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}", None, "one JSON object per line", err.msg) from None
        rows.append(_row(item, path, number))
    return rows


def _row(item: Any, path: Path, number: int) -> ExampleRow:
    where = f"{path}:{number}"
    if not isinstance(item, dict):
        raise DataError(where, None, "a JSON object", type(item).__name__)
    if "messages" in item:
        item = _from_messages(item["messages"], where)
    for field in ("instruction", "output"):
        if not isinstance(item.get(field), str) or not item[field].strip():
            raise DataError(where, field, "a non-empty string", repr(item.get(field))[:40])
    return ExampleRow(instruction=item["instruction"], input=str(item.get("input") or ""), output=item["output"],
                      group=f"{path.name}:{number}", provenance={"route": "file", "file": str(path), "row": number})


def _from_messages(messages: Any, where: str) -> dict[str, str]:
    """A user turn and the assistant's answer (our messages.jsonl shape): the user turn is the instruction."""
    if not isinstance(messages, list):
        raise DataError(where, "messages", "a list of {role, content}", type(messages).__name__)
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    answers = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not users or not answers:
        raise DataError(where, "messages", "a user turn and an assistant turn", f"{len(messages)} messages")
    return {"instruction": str(users[0]), "input": "", "output": str(answers[-1])}
