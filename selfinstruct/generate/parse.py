"""Read teacher replies into items. Pure, and tolerant of what models write.

Teacher output is untrusted: control characters are removed (`sanitize`), code blocks stay whole (a line inside
a fence never starts a field), chat preambles, sign-offs and refusals are no items, markdown emphasis and
numbering slips ("9)", "Task 10.", "**11:**") are read, a JSON answer is read as JSON, and when a reply stopped
on its length limit only the last, cut-off item is dropped, never the whole reply.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .parse_json import find_json, find_json_list, looks_like_json
from .parse_lines import (
    Line, drop_trailing_chatter, is_chatter, label_of, numbered_item, split_lines, strip_emphasis, unwrap_prose_fences,
)
from .prompts import NO_INPUT
from ..core.records import Instance
from ..core.sanitize import sanitize_text

_FIELD_PREFIX = re.compile(r"^\s*(?:task|instruction)\s*\d*\s*[:.]\s*", re.IGNORECASE)
# A bold category before the task ("**Creative writing:** Write a haiku ..."), as chat models list them.
_CATEGORY = re.compile(r"^\*\*[^*\n]{1,40}?(?::\*\*|\*\*\s*[:\-\u2013\u2014])\s*(?=\S)")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+.*|\*\*[^*]+\*\*:?|__[^_]+__:?)\s*$")
_NEXT_TASK = re.compile(r"^\s*[*_]*task[*_]*\s*:", re.IGNORECASE)
_ALPACA_HEADER = re.compile(
    r"^ {0,3}(?:#{2,}|\*\*)\s*(?:task\s*#?\s*(?P<n>\d*)|(?P<m>\d+))?\s*[:.]?\s*(?:\*\*)?\s*(?P<title>.*?)"
    r"\s*(?:\*\*)?\s*$", re.IGNORECASE)
_LIST_NUMBER = re.compile(r"^ {0,3}\d{1,3}[.)]\s")
_NONE_INPUTS = {NO_INPUT.lower(), "<noinput>", "<no input>", "none", "none.", "n/a", "no input", "(none)",
                "(no input)", "[none]", "<empty>", "null", "-", "", "noinput", "<none provided>"}
_INPUT_FIRST = ("example", "input", "output")
_OUTPUT_FIRST = ("example", "label", "output", "input")
_ALPACA_FIELDS = ("instruction", "input", "output", "response")

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
    return sanitize_text(text)


# -- instructions ---------------------------------------------------------------------------------------------------

def parse_instructions(text: str, finish_reason: str | None) -> Parsed[str]:
    """New instructions from a continuation of the numbered task list (or a chat answer listing them)."""
    if looks_like_json(text):
        from_json = _json_instructions(text, finish_reason)
        if from_json is not None and (from_json.items or from_json.truncated):
            return from_json
    blocks = _instruction_blocks(unwrap_prose_fences(split_lines(text), lambda line: numbered_item(line) is not None))
    items = [clean_instruction(" ".join(block)) for block in blocks]
    if finish_reason == "length" and _ends_in_chatter(text):
        # Cut inside words about the answer: every item before them arrived whole.
        return Parsed(items=[item for item in items if item], truncated=text.rstrip().rsplit("\n", 1)[-1].strip())
    return _drop_cut_off([item for item in items if item], finish_reason)


def _ends_in_chatter(text: str) -> bool:
    last = next((line for line in reversed(sanitize_text(text).split("\n")) if line.strip()), "")
    rest = numbered_item(last)
    return is_chatter(last if rest is None else rest)


def _instruction_blocks(lines: list[Line]) -> list[list[str]]:
    """One block of lines per item; text before the first number is task N itself, unless it is chatter."""
    blocks: list[list[str]] = []
    after_blank = True
    for line in lines:
        text = line.text
        if not text.strip():
            after_blank = True
            continue
        item = None if line.code else numbered_item(text)
        if item is not None:
            blocks.append([item])
        elif is_chatter(text) or (after_blank and _HEADING.match(text)):
            pass
        elif blocks and not after_blank and not _new_sentence_line(blocks[-1][-1], text):
            blocks[-1].append(text)
        else:
            blocks.append([text])
        after_blank = False
    return blocks


def _new_sentence_line(previous: str, text: str) -> bool:
    """An unindented line opening a sentence after a finished one is another item, not a wrapped line."""
    return previous.rstrip().endswith((".", "!", "?")) and text[:1].isupper()


def clean_instruction(text: str) -> str:
    """One instruction on one line, without item markers, emphasis or a category; "" when it is chatter."""
    text = " ".join(text.split())
    text = _CATEGORY.sub("", text)
    text = _FIELD_PREFIX.sub("", strip_emphasis(text))
    text = text.strip().strip('"').strip()
    if text.endswith(":") and len(text.split()) <= 3:
        return ""  # a list heading ("New tasks:"), not a task
    return "" if is_chatter(text) else text


def _json_instructions(text: str, finish_reason: str | None) -> Parsed[str] | None:
    def read(item: object) -> str | None:
        return clean_instruction(_json_text(item, ("instruction", "task", "text", "prompt", "description"))) or None
    return _from_json_list(text, finish_reason, read)


def _from_json_list(text: str, finish_reason: str | None, read: Callable[[object], T | None]) -> Parsed[T] | None:
    """Items read from the reply's JSON array, one per element `read` accepts; None when there is no array."""
    found = find_json_list(text)
    if found is None:
        return None
    items = [item for item in map(read, found.items) if item is not None]
    truncated = found.rest if not found.closed and finish_reason == "length" and found.rest else None
    return Parsed(items=items, truncated=truncated)


def _json_text(item: object, keys: tuple[str, ...]) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in keys:
            value = item.get(key)
            if isinstance(value, str):
                return value
    return ""


def _drop_cut_off(blocks: list[T], finish_reason: str | None) -> Parsed[T]:
    """Split off the last raw block when the reply stopped on its length limit."""
    if finish_reason == "length" and blocks:
        return Parsed(items=blocks[:-1], truncated=str(blocks[-1]))
    return Parsed(items=blocks)


# -- classification -------------------------------------------------------------------------------------------------

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(r"^\s*[*_]*(?:classification|answer|is classification)[*_]*\s*:\s*", re.IGNORECASE)


def parse_classification(text: str) -> bool | None:
    """Yes/No answer to the classification question; None when it is neither."""
    if looks_like_json(text):
        value = find_json(text)
        if isinstance(value, dict):
            answer = next((value[k] for k in ("classification", "is_classification", "answer") if k in value), None)
            if isinstance(answer, bool):
                return answer
            text = str(answer) if answer is not None else ""
    first_line = next((line for line in clean_text(text).split("\n") if line.strip()), "")
    first_line = strip_emphasis(_ANSWER_PREFIX.sub("", first_line))
    words = first_line.split()
    if not words:
        return None
    first = words[0].strip(".,!:*\"'").lower()
    if first in {"yes", "no"}:
        return first == "yes"
    # "Sure! The answer is Yes." reads as Yes; a line naming both is no answer.
    found = {match.lower() for match in _YES_NO.findall(first_line)}
    return found == {"yes"} if len(found) == 1 else None


# -- instances ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    name: str
    value: str
    index: int


def parse_instances(text: str, is_classification: bool, finish_reason: str | None) -> Parsed[Instance]:
    """Examples for one task; reading stops where the reply starts another task."""
    if looks_like_json(text):
        from_json = _json_instances(text, is_classification, finish_reason)
        if from_json is not None and (from_json.items or from_json.truncated):
            return from_json
    names = _OUTPUT_FIRST if is_classification else _INPUT_FIRST
    lines = unwrap_prose_fences(split_lines(text), lambda line: label_of(line, names) is not None)
    cut_at = next((i for i, line in enumerate(lines) if not line.code and _NEXT_TASK.match(line.text)), len(lines))
    fields = _labelled_fields(lines[:cut_at], names)
    output_first = is_classification and _label_comes_first(fields)
    pairs = _label_pairs(fields) if output_first else _input_output_pairs(fields, label_only=is_classification)
    if finish_reason == "length" and fields:
        last = fields[-1]
        pairs = [(instance, used) for instance, used in pairs if last.index not in used]
        return Parsed(items=[p for p, _ in pairs], truncated=f"{last.name.title()}: {last.value}")
    return Parsed(items=[p for p, _ in pairs])


def _labelled_fields(lines: list[Line], names: tuple[str, ...], last: str | None = None) -> list[_Field]:
    """Fields in order; a value runs until the next label, and the `last` field to the end of the lines."""
    raw: list[tuple[str, list[Line]]] = []
    for line in lines:
        label = None if line.code or (raw and raw[-1][0] == last) else label_of(line.text, names)
        if label and label[0] == "example":
            # "Example 2" separates examples; "Example 2: Input: x" carries its first field.
            label = label_of(label[1], names) if label[1] else None
            raw.append(("example", []))
        if label:
            raw.append(("output" if label[0] == "response" else label[0], [Line(label[1])]))
        elif raw:
            raw[-1][1].append(line)
    fields = []
    for name, value_lines in raw:
        if name != "example":
            value = "\n".join(line.text for line in drop_trailing_chatter(value_lines))
            # A value that starts on the line after its label may be an indented block: read it dedented.
            value = (textwrap.dedent(value) if value_lines and not value_lines[0].text else value).strip()
            fields.append(_Field(name, value, len(fields)))
    return fields


def _label_comes_first(fields: list[_Field]) -> bool:
    first = next((f.name for f in fields if f.name in {"input", "label", "output"}), "label")
    return first != "input"


def _input_output_pairs(fields: list[_Field], label_only: bool) -> list[tuple[Instance, set[int]]]:
    pairs: list[tuple[Instance, set[int]]] = []
    pending: _Field | None = None
    for item in fields:
        if item.name == "input":
            pending = item
        elif item.name in {"output", "label"} and item.value:
            output = label_value(item.value) if label_only else item.value
            used = {item.index} | ({pending.index} if pending else set())
            pairs.append((Instance(input=input_value(pending.value if pending else ""), output=output), used))
            pending = None
    return pairs


def _label_pairs(fields: list[_Field]) -> list[tuple[Instance, set[int]]]:
    """Output-first: each label with the input after it.

    A label with no input is a label-only instance when the task has no inputs at all (no field of the reply
    holds one; "Input: <none>" says so explicitly); beside labelled inputs it is an unfinished item.
    """
    pairs: list[tuple[Instance, set[int]]] = []
    label_only = not any(item.name == "input" and input_value(item.value) for item in fields)
    label: _Field | None = None
    for item in fields:
        if item.name in {"label", "output"}:
            if label is not None and label_only and _single_label(label.value):
                pairs.append((Instance(input="", output=label_value(label.value)), {label.index}))
            label = item if label_value(item.value) else None
        elif item.name == "input" and label is not None:
            pairs.append((Instance(input=input_value(item.value), output=label_value(label.value)),
                          {label.index, item.index}))
            label = None
    if label is not None and label_only and _single_label(label.value):
        pairs.append((Instance(input="", output=label_value(label.value)), {label.index}))
    return pairs


def _single_label(value: str) -> bool:
    """A label rather than the list of them ("Metal, Nonmetal, Metalloid") a model may write instead."""
    return "," not in label_value(value)


def label_value(value: str) -> str:
    """A class label: the first line, without emphasis or quotes."""
    return strip_emphasis(value.split("\n")[0]).strip().strip('"').strip()


def input_value(value: str) -> str:
    """An instance input; the no-input markers ("<none>", "N/A", ...) read as ""."""
    return "" if value.strip().lower() in _NONE_INPUTS else value.strip()


def _json_instances(text: str, is_classification: bool, finish_reason: str | None) -> Parsed[Instance] | None:
    def read(item: object) -> Instance | None:
        if not isinstance(item, dict):
            return None
        output = _json_text(item, ("label", "output") if is_classification else ("output", "label", "answer"))
        output = label_value(output) if is_classification else output.strip()
        return Instance(input=input_value(_json_text(item, ("input", "text"))), output=output) if output else None
    return _from_json_list(text, finish_reason, read)


# -- alpaca ---------------------------------------------------------------------------------------------------------

def parse_alpaca_tasks(text: str, finish_reason: str | None) -> Parsed[tuple[str, Instance]]:
    """Complete tasks (instruction, instance) from one Alpaca-style reply."""
    if looks_like_json(text):
        from_json = _json_alpaca(text, finish_reason)
        if from_json is not None and (from_json.items or from_json.truncated):
            return from_json
    lines = unwrap_prose_fences(split_lines(text), lambda line: label_of(line, _ALPACA_FIELDS) is not None)
    blocks = [block for block in _alpaca_blocks(lines) if any(line.text.strip() for line in block[1])]
    cut = _drop_cut_off(blocks, finish_reason)
    tasks = [task for task in (_alpaca_task(title, block) for title, block in cut.items) if task]
    truncated = None
    if cut.truncated is not None:
        truncated = "\n".join(line.text for line in blocks[-1][1]).strip()
    return Parsed(items=tasks, truncated=truncated)


def _alpaca_blocks(lines: list[Line]) -> list[tuple[str, list[Line]]]:
    """(header title, lines) per task: a "### Task N" header, or a blank line then "Instruction:", starts one."""
    blocks: list[tuple[str, list[Line]]] = [("", [])]
    blank = True
    for line in lines:
        header = None if line.code else _ALPACA_HEADER.match(line.text)
        if header and (header.group("n") is not None or header.group("m") or not header.group("title")):
            blocks.append((strip_emphasis(header.group("title") or ""), []))
        elif not line.code and (blank or _LIST_NUMBER.match(line.text)) and _starts_new_task(line, blocks[-1][1]):
            blocks.append(("", [line]))
        else:
            blocks[-1][1].append(line)
        blank = not line.text.strip()
    return blocks


def _starts_new_task(line: Line, block: list[Line]) -> bool:
    label = label_of(line.text, _ALPACA_FIELDS)
    return bool(label and label[0] == "instruction" and any(
        (found := label_of(prior.text, _ALPACA_FIELDS)) and found[0] in {"output", "response"}
        for prior in block if not prior.code))


def _alpaca_task(title: str, block: list[Line]) -> tuple[str, Instance] | None:
    # Output is the last field of a task: an "Instruction:" line inside it is output text, and cannot
    # replace the task's instruction (a later duplicate label would win in the dict).
    fields = {item.name: item.value for item in reversed(_labelled_fields(block, _ALPACA_FIELDS, last="output"))}
    instruction = clean_instruction(fields.get("instruction", "") or title)
    output = fields.get("output", "")
    if not instruction or not output:
        return None
    return instruction, Instance(input=input_value(fields.get("input", "")), output=output)


def _json_alpaca(text: str, finish_reason: str | None) -> Parsed[tuple[str, Instance]] | None:
    def read(item: object) -> tuple[str, Instance] | None:
        if not isinstance(item, dict):
            return None
        instruction = clean_instruction(_json_text(item, ("instruction", "task")))
        output = _json_text(item, ("output", "response", "answer")).strip()
        if not instruction or not output:
            return None
        return instruction, Instance(input=input_value(_json_text(item, ("input",))), output=output)
    return _from_json_list(text, finish_reason, read)
