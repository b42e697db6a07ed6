"""Finding the JSON in a reply: bare, in a ```json fence, after a chat preamble, or cut by the length limit."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .parse_lines import is_chatter

# strict=False: raw newlines and tabs inside strings, which grammar-constrained decoders let a model write
# (seen from llama.cpp: an "input" value holding "\n\nOutput: ...") and which a strict decoder refuses.
_DECODER = json.JSONDecoder(strict=False)
_JSON_FENCE = re.compile(r"```[ \t]*(?:json[ \t]*)?\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL | re.IGNORECASE)
_SPACE = re.compile(r"\s*")
_JSON_FENCE_START = re.compile(r"^[ \t]*```[ \t]*json[ \t]*$", re.MULTILINE | re.IGNORECASE)
# Where a JSON value may start: an object, or an array of objects or strings ("[1, 2]" in prose is no reply).
_START = re.compile(r"\{\s*\"|\[\s*[\{\"\]]")
_MAX_STARTS = 20  # a reply is not scanned for JSON at every bracket it holds


@dataclass(frozen=True)
class JsonList:
    """The complete elements of a reply's first JSON array, and whether the array was closed."""

    items: list[Any]
    closed: bool
    rest: str  # text after the last complete element, when the array was not closed


def looks_like_json(text: str) -> bool:
    """True when the reply's answer is JSON: its first line of substance opens an object, an array or a fence."""
    if _JSON_FENCE_START.search(text):
        return True
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not is_chatter(stripped):
            return stripped[:1] in "{[" or stripped.startswith("```") and (
                stripped[3:].strip().lower() in {"", "json"})
    return False


def find_json(text: str) -> Any | None:
    """The first JSON object or array of the reply (a fenced one first), or None."""
    for candidate in _candidates(text):
        value = _first_value(candidate)
        if value is not None:
            return value
    return None


def find_json_list(text: str) -> JsonList | None:
    """The first JSON array's complete elements, even when the reply was cut inside it."""
    for candidate in _candidates(text):
        for count, match in enumerate(_START.finditer(candidate)):
            if count == _MAX_STARTS:
                break
            if candidate[match.start()] == "[":
                found = _read_elements(candidate, match.start() + 1)
                if found is not None:
                    return found
    return None


def _candidates(text: str) -> list[str]:
    fenced = [match.group(1) for match in _JSON_FENCE.finditer(text)]
    return [*fenced, text] if fenced else [text]


def _first_value(text: str) -> Any | None:
    for count, match in enumerate(_START.finditer(text)):
        if count == _MAX_STARTS:
            break
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        return value
    return None


def _read_elements(text: str, at: int) -> JsonList | None:
    """Elements from `at` (just past a "["); None when not even one element or the closing bracket reads."""
    items: list[Any] = []
    at = _SPACE.match(text, at).end()
    if text.startswith("]", at):
        return JsonList([], True, "")
    while True:
        try:
            value, end = _DECODER.raw_decode(text, at)
        except ValueError:
            return JsonList(items, False, text[at:].strip()) if items else None
        items.append(value)
        at = _SPACE.match(text, end).end()
        if text.startswith("]", at):
            return JsonList(items, True, "")
        if not text.startswith(",", at):
            return JsonList(items, False, text[at:].strip())
        at = _SPACE.match(text, at + 1).end()
