"""Load seed tasks: the Self-Instruct JSONL format, or Alpaca JSON / JSONL.

Every malformed line becomes one `SeedError` naming file, line, field and what
was expected, so a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import SeedError
from .records import AlpacaExample, Instance, SeedTask
from .sanitize import has_lone_surrogate

def _default_seeds() -> Path:
    """Our seed tasks: beside the package in a checkout, under <prefix>/share when installed from a wheel."""
    checkout = Path(__file__).resolve().parents[2] / "seeds" / "seed_tasks.jsonl"
    installed = Path(sys.prefix) / "share" / "selfinstruct" / "seeds" / "seed_tasks.jsonl"
    return checkout if checkout.is_file() or not installed.is_file() else installed


DEFAULT_SEEDS = _default_seeds()
MAX_RECORD_CHARS = 1_000_000
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\r\n]*")


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
    except OSError as err:
        raise SeedError(str(path), None, "a readable seed file", err.strerror or type(err).__name__) from None
    try:
        # utf-8-sig: a byte-order mark left by an editor is harmless, so accept it.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SeedError(f"{path}:{line}", None, "UTF-8 text", f"byte 0x{raw[err.start]:02x}") from None


def _decode(path: Path, line: int, text: str, start: int = 0) -> tuple[Any, int]:
    """One JSON value of `text` at `start` and where it ends; every failure is a SeedError at its line."""
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as err:
        raise SeedError(f"{path}:{err.lineno + line - 1}", None, "a JSON object",
                        f"invalid JSON ({err.msg})") from None
    except RecursionError:
        # json raises this, not JSONDecodeError, for thousands of nested brackets.
        raise SeedError(f"{path}:{line}", None, "a JSON object", "JSON nested too deeply") from None


def _json_lines(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    records = []
    # Split on newlines only: str.splitlines() also breaks at U+2028 or U+0085, which JSON allows raw in strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        _check_size(path, number, len(line))
        record, end = _decode(path, number, line, _SPACE.match(line).end())
        if line[end:].strip():
            raise SeedError(f"{path}:{number}", None, "one JSON object per line", "more text after the object")
        if not isinstance(record, dict):
            raise SeedError(f"{path}:{number}", None, "a JSON object", type(record).__name__)
        records.append((number, record))
    return records


def _json_array(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """A JSON list of objects, read item by item so that every error names the item's line."""
    records = []
    lines = _LineCounter(text)
    at = _SPACE.match(text, text.index("[") + 1).end()
    while text[at:at + 1] != "]":
        line = lines.at(at)
        item, end = _decode(path, 1, text, at)
        _check_size(path, line, end - at)
        if not isinstance(item, dict):
            raise SeedError(f"{path}:{line}", None, "a JSON object", type(item).__name__)
        records.append((line, item))
        at = _SPACE.match(text, end).end()
        if text[at:at + 1] == ",":
            at = _SPACE.match(text, at + 1).end()
            if text[at:at + 1] == "]":
                raise SeedError(f"{path}:{lines.at(at)}", None, "another object after ','", "']'")
        elif text[at:at + 1] != "]":
            got = repr(text[at]) if at < len(text) else "the end of the file"
            raise SeedError(f"{path}:{lines.at(at)}", None, "',' or ']' after an object", got)
    if text[at + 1:].strip():
        raise SeedError(f"{path}:{lines.at(at)}", None, "nothing after the list's ']'", "more text")
    return records


class _LineCounter:
    """Line numbers of increasing offsets, counting each newline once (a 50,000-item list stays linear)."""

    def __init__(self, text: str):
        self.text, self.line, self.offset = text, 1, 0

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _check_size(path: Path, line: int, chars: int) -> None:
    # A seed is a short task shown whole in every prompt that samples it; a megabyte record is a
    # wrong file or a whole minified list on one line, and would overflow any teacher's context.
    if chars > MAX_RECORD_CHARS:
        raise SeedError(f"{path}:{line}", None, f"a seed task of at most {MAX_RECORD_CHARS:,} characters",
                        f"{chars:,} characters")


def _to_task(path: Path, line: int, record: dict[str, Any], index: int) -> SeedTask:
    where = f"{path}:{line}"
    surrogate = _surrogate_field(record)
    if surrogate is not None:
        raise SeedError(where, surrogate, "valid Unicode text", "a lone surrogate (\\ud800-\\udfff)")
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


def _surrogate_field(value: Any, where: str = "") -> str | None:
    """The dotted path of the first string (value or field name) holding a lone surrogate, or None."""
    if isinstance(value, str):
        return where if has_lone_surrogate(value) else None
    if isinstance(value, dict):
        pairs = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, list):
        pairs = [(str(index), item) for index, item in enumerate(value)]
    else:
        return None
    for key, item in pairs:
        if has_lone_surrogate(key):
            return where or "(a field name)"
        if found := _surrogate_field(item, f"{where}.{key}" if where else key):
            return found
    return None


def _expected(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "this field to be present"
    if kind == "extra_forbidden":
        return "no such field (allowed: id, name, instruction, instances, is_classification)"
    if kind in {"string_type", "value_error"}:
        return "a non-empty string" if kind == "value_error" else "a string"
    if kind in {"too_short", "list_type"}:
        return "a non-empty list of {input, output} objects"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return "an {input, output} object"
    if kind.startswith("bool"):
        return "true or false"
    return error["msg"].lower()


def _got(error: dict[str, Any]) -> str | None:
    if error["type"] == "missing":
        return None
    return _shown(error.get("input"))


def _check_unique_ids(path: Path, tasks: list[SeedTask], lines: list[int]) -> None:
    """Ids and instructions are unique: the store holds each instruction once, as one task."""
    ids: dict[str, int] = {}
    instructions: dict[str, int] = {}
    for task, line in zip(tasks, lines):
        if task.id in ids:
            raise SeedError(
                f"{path}:{line}", "id", f"a unique id ('{task.id}' is already used on line {ids[task.id]})"
            )
        if task.instruction in instructions:
            first = instructions[task.instruction]
            raise SeedError(
                f"{path}:{line}", "instruction",
                f"a unique instruction (line {first} has the same one; put both instances in one task)",
                _shown(task.instruction),
            )
        ids[task.id] = line
        instructions[task.instruction] = line


def _shown(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def iter_examples(tasks: list[SeedTask]) -> Iterator[AlpacaExample]:
    """Flatten seed tasks into Alpaca examples, one per instance."""
    for task in tasks:
        for instance in task.instances:
            yield AlpacaExample(instruction=task.instruction, input=instance.input, output=instance.output)
