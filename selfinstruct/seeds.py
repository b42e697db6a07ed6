"""Load seed tasks: the Self-Instruct JSONL format, or Alpaca JSON / JSONL.

Every malformed line becomes one `SeedError` naming file, line, field and what
was expected, so a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import SeedError
from .records import AlpacaExample, Instance, SeedTask

def _default_seeds() -> Path:
    """Our seed tasks: beside the package in a checkout, under <prefix>/share when installed from a wheel."""
    checkout = Path(__file__).resolve().parent.parent / "seeds" / "seed_tasks.jsonl"
    installed = Path(sys.prefix) / "share" / "selfinstruct" / "seeds" / "seed_tasks.jsonl"
    return checkout if checkout.is_file() or not installed.is_file() else installed


DEFAULT_SEEDS = _default_seeds()


def load_seeds(path: Path) -> list[SeedTask]:
    """Read seed tasks from `path`; Alpaca records become one-instance seed tasks."""
    text = _read_text(path)
    if not text.strip():
        raise SeedError(f"{path}:1", None, "at least one seed task", "an empty file")
    if text.lstrip().startswith("["):
        if path.suffix == ".jsonl":
            raise SeedError(
                f"{path}:1", None, "one JSON object per line (JSON Lines)",
                "a JSON array (name the file .json for an Alpaca JSON list)",
            )
        records = _json_array(path, text)
    else:
        records = _json_lines(path, text)
    tasks = [_to_task(path, line, record, index) for index, (line, record) in enumerate(records)]
    _check_unique_ids(path, tasks, [line for line, _ in records])
    return tasks


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SeedError(str(path), None, "an existing seed file", "no such file") from None
    except IsADirectoryError:
        raise SeedError(str(path), None, "a seed file", "a directory") from None
    try:
        # utf-8-sig: a byte-order mark left by an editor is harmless, so accept it.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SeedError(f"{path}:{line}", None, "UTF-8 text", f"byte 0x{raw[err.start]:02x}") from None


def _json_lines(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise SeedError(f"{path}:{number}", None, "a JSON object", f"invalid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise SeedError(f"{path}:{number}", None, "a JSON object", type(record).__name__)
        records.append((number, record))
    return records


def _json_array(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise SeedError(f"{path}:{err.lineno}", None, "a JSON list", f"invalid JSON ({err.msg})") from None
    records = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise SeedError(f"{path}:item {index}", None, "a JSON object", type(item).__name__)
        records.append((index, item))
    return records


def _to_task(path: Path, line: int, record: dict[str, Any], index: int) -> SeedTask:
    where = f"{path}:{line}" if path.suffix != ".json" else f"{path}:item {line}"
    model = SeedTask if "instances" in record else AlpacaExample
    try:
        parsed = model.model_validate(record)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise SeedError(where, field, _expected(first), _got(first)) from None
    if isinstance(parsed, SeedTask):
        return parsed
    return SeedTask(
        id=f"seed_{index}",
        name=f"alpaca_{index}",
        instruction=parsed.instruction,
        instances=[Instance(input=parsed.input, output=parsed.output)],
    )


def _expected(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "this field to be present"
    if kind == "extra_forbidden":
        return "no such field (allowed: id, name, instruction, instances, is_classification)"
    if kind in {"string_type", "value_error"}:
        return "a non-empty string" if kind == "value_error" else "a string"
    if kind == "too_short":
        return "a non-empty list of {input, output} objects"
    if kind.startswith("bool"):
        return "true or false"
    return error["msg"].lower()


def _got(error: dict[str, Any]) -> str | None:
    if error["type"] == "missing":
        return None
    value = error.get("input")
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _check_unique_ids(path: Path, tasks: list[SeedTask], lines: list[int]) -> None:
    seen: dict[str, int] = {}
    for task, line in zip(tasks, lines):
        if task.id in seen:
            raise SeedError(
                f"{path}:{line}", "id", f"a unique id ('{task.id}' is already used on line {seen[task.id]})"
            )
        seen[task.id] = line


def iter_examples(tasks: list[SeedTask]) -> Iterator[AlpacaExample]:
    """Flatten seed tasks into Alpaca examples, one per instance."""
    for task in tasks:
        for instance in task.instances:
            yield AlpacaExample(instruction=task.instruction, input=instance.input, output=instance.output)
