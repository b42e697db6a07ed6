"""Read teacher replies into items. Pure, and tolerant of the usual slips.

Teacher output is untrusted: control characters are removed, numbering slips
("9)", "Task 10.", "**11:**") are accepted, and when a reply stopped on its
length limit only the last, cut-off item is dropped, never the whole reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .prompts import NO_INPUT
from .records import Instance

# ANSI escape sequences go whole: removing only ESC would leave "[31m" in the text.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
# C0/C1 controls (not tab or newline), zero-width space, line/paragraph separators, BOM, bidi embeddings,
# overrides and isolates (they can make a stored text read differently from what it is), and lone
# surrogates: JSON may carry "\ud800", which no UTF-8 writer (SQLite, our JSON files) can encode.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NUMBERED = re.compile(r"^\s*[#*]*\s*(?:task\s*)?(\d{1,4})\s*[.:)\-]+\s*[*]*\s*(.*)$", re.IGNORECASE)
_FIELD_PREFIX = re.compile(r"^\s*(?:task|instruction)\s*\d*\s*[:.]\s*", re.IGNORECASE)
_ALPACA_SPLIT = re.compile(r"^\s*#{2,}\s*(?:task\s*)?\d*\s*[:.]?\s*$", re.IGNORECASE | re.MULTILINE)
_NONE_INPUTS = {NO_INPUT.lower(), "<noinput>", "<no input>", "none", "n/a", "no input", "(none)", ""}


T = TypeVar("T")


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """Items read from one reply, and the cut-off last item when the reply hit its length limit."""

    items: list[T] = field(default_factory=list)
    truncated: str | None = None


def clean_text(text: str) -> str:
    """Drop control characters (keeping newlines and tabs) and normalise line endings.

    The result always encodes as UTF-8, so whatever a teacher sends can be stored and exported.
    """
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text)


def parse_instructions(text: str, finish_reason: str | None) -> Parsed[str]:
    """New instructions from a continuation of the numbered task list."""
    blocks: list[list[str]] = []
    lead: list[str] = []
    for line in clean_text(text).split("\n"):
        match = _NUMBERED.match(line)
        if match:
            blocks.append([match.group(2)])
        elif blocks:
            blocks[-1].append(line)
        else:
            lead.append(line)
    lead_text = " ".join(" ".join(lead).split())
    # The prompt ends with "Task N:", so text before the first number is task N
    # itself, unless it is a chat preamble such as "Here are more tasks:".
    if lead_text and not lead_text.endswith(":"):
        blocks.insert(0, [lead_text])
    items = [_clean_instruction(" ".join(block)) for block in blocks]
    return _drop_cut_off([item for item in items if item], finish_reason)


def _clean_instruction(text: str) -> str:
    text = " ".join(text.split())
    text = _FIELD_PREFIX.sub("", text)
    return text.strip().strip('"').strip("*").strip()


def _drop_cut_off(blocks: list[T], finish_reason: str | None) -> Parsed[T]:
    """Split off the last raw block when the reply stopped on its length limit."""
    if finish_reason == "length" and blocks:
        return Parsed(items=blocks[:-1], truncated=str(blocks[-1]))
    return Parsed(items=blocks)


def parse_classification(text: str) -> bool | None:
    """Yes/No answer to the classification question; None when it is neither."""
    words = clean_text(text).strip().split()
    if not words:
        return None
    first = words[0].strip(".,!:*\"'").lower()
    return {"yes": True, "no": False}.get(first)


def parse_instances(text: str, is_classification: bool, finish_reason: str | None) -> Parsed[Instance]:
    """Examples for one task; reading stops where the reply starts another task."""
    body = clean_text(text)
    body = re.split(r"^\s*Task\s*:", body, maxsplit=1, flags=re.MULTILINE | re.IGNORECASE)[0]
    fields = _labelled_fields(body, ("input", "output", "label", "example"))
    cut = _drop_cut_off(fields, finish_reason)
    pairs = _label_pairs(cut.items) if is_classification else _input_output_pairs(cut.items)
    truncated = f"{fields[-1][0].title()}: {fields[-1][1]}" if cut.truncated else None
    return Parsed(items=pairs, truncated=truncated)


def _labelled_fields(body: str, names: tuple[str, ...], last: str | None = None) -> list[tuple[str, str]]:
    """(name, value) in order; a value runs until the next labelled line, and the `last` field to the end."""
    pattern = re.compile(rf"^\s*[*]*({'|'.join(names)})\b[^:\n]*?[*]*\s*:?[*]*\s?(.*)$", re.IGNORECASE)
    fields: list[tuple[str, list[str]]] = []
    for line in body.split("\n"):
        match = None if fields and fields[-1][0] == last else pattern.match(line)
        if match and (match.group(1).lower() == "example" or ":" in line):
            fields.append((match.group(1).lower(), [match.group(2)]))
        elif fields:
            fields[-1][1].append(line)
    return [(name, "\n".join(lines).strip()) for name, lines in fields]


def _input_output_pairs(fields: list[tuple[str, str]]) -> list[Instance]:
    pairs: list[Instance] = []
    pending_input: str | None = None
    for name, value in fields:
        if name == "input":
            pending_input = value
        elif name == "output" and value:
            pairs.append(Instance(input=_input_value(pending_input or ""), output=value))
            pending_input = None
    return pairs


def _label_pairs(fields: list[tuple[str, str]]) -> list[Instance]:
    pairs: list[Instance] = []
    label: str | None = None
    for name, value in fields:
        if name in {"label", "output"}:
            label = value.split("\n")[0].strip()
        elif name == "input" and label and value:
            pairs.append(Instance(input=_input_value(value), output=label))
    return pairs


def _input_value(value: str) -> str:
    return "" if value.strip().lower() in _NONE_INPUTS else value.strip()


def parse_alpaca_tasks(text: str, finish_reason: str | None) -> Parsed[tuple[str, Instance]]:
    """Complete tasks (instruction, instance) from one Alpaca-style reply."""
    blocks = [block.strip() for block in _ALPACA_SPLIT.split(clean_text(text))]
    cut = _drop_cut_off([block for block in blocks if block], finish_reason)
    tasks: list[tuple[str, Instance]] = []
    for block in cut.items:
        # Output is the last field of a task: an "Instruction:" line inside it is output text, and cannot
        # replace the task's instruction (a later duplicate label would win in the dict).
        fields = dict(_labelled_fields(block, ("instruction", "input", "output"), last="output"))
        instruction = " ".join(fields.get("instruction", "").split())
        output = fields.get("output", "")
        if instruction and output:
            tasks.append((instruction, Instance(input=_input_value(fields.get("input", "")), output=output)))
    return Parsed(items=tasks, truncated=cut.truncated)
