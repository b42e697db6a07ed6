"""From a source row to the fields a family's templates read: column mapping, label maps, checks.

Each family names the fields its templates use; a column mapping says which column holds each (defaults
recognise the usual names). `read_fields` turns one raw row into those fields or a `RowProblem` naming the
field and what was wrong, which the caller raises or counts (--skip-bad).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError


@dataclass(frozen=True)
class FieldSpec:
    """A field a family reads: the column names tried when no mapping is given, and whether it may be absent."""

    name: str
    columns: tuple[str, ...]
    required: bool = True


def _spec(name: str, *columns: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, columns or (name,), required)


_TEXT = ("text", "sentence", "document", "review", "content", "article", "utterance", "source")
FAMILY_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "extractive-qa": (_spec("context", "context", "passage", "paragraph"), _spec("question", "question", "query"),
                      _spec("answers", "answers", "answer"), _spec("title", required=False),
                      _spec("id", "id", "qid", required=False), _spec("is_impossible", required=False)),
    "classification": (_spec("text", *_TEXT), _spec("label", "label", "category", "intent", "class", "labels",
                                                    "sentiment", "topic")),
    "summarization": (_spec("text", *_TEXT), _spec("summary", "summary", "target", "tldr", "highlights",
                                                   "abstract"), _spec("title", required=False)),
    "nli": (_spec("premise", "premise", "sentence1", "s1"), _spec("hypothesis", "hypothesis", "sentence2", "s2"),
            _spec("label", "label", "gold_label")),
    "paraphrase": (_spec("sentence1", "sentence1", "question1", "text1", "s1"),
                   _spec("sentence2", "sentence2", "question2", "text2", "s2"),
                   _spec("label", "label", "is_duplicate", "paraphrase")),
    "yes-no-qa": (_spec("passage", "passage", "context", "text"), _spec("question", "question", "query"),
                  _spec("answer", "answer", "label")),
}
LABELLED = {"classification", "nli", "paraphrase", "yes-no-qa"}

# Labels with a meaning fixed by the family; a --labels map replaces these.
_NLI_LABELS = {"0": "entailment", "1": "neutral", "2": "contradiction", "entailment": "entailment",
               "neutral": "neutral", "contradiction": "contradiction"}
_NO_LABEL = {"-1", "-", ""}  # SNLI's pairs without a consensus label
_BOOLEAN = {"1": "yes", "true": "yes", "yes": "yes", "0": "no", "false": "no", "no": "no"}
FIXED_OPTIONS = {"nli": ["entailment", "neutral", "contradiction"], "paraphrase": ["yes", "no"],
                 "yes-no-qa": ["yes", "no"]}


class RowProblem(Exception):
    """Why one row cannot be converted: a stable reason, the field and what was found."""

    def __init__(self, reason: str, field: str | None, expected: str, got: str | None = None):
        super().__init__(reason)
        self.reason, self.field, self.expected, self.got = reason, field, expected, got


def parse_columns(text: str | None) -> dict[str, str]:
    """`field=column,field=column` from --columns."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigError("--columns", None, "field=column pairs separated by commas", part.strip())
        mapping[field.strip()] = column.strip()
    return mapping


def resolve_columns(family: str | None, given: Mapping[str, str], columns: list[str], where: str) -> dict[str, str]:
    """Field -> column for the family: the given mapping, else the first usual name present."""
    specs = FAMILY_FIELDS.get(family or "", ())
    known = {spec.name for spec in specs}
    resolved: dict[str, str] = {}
    for field, column in given.items():
        if column not in columns:
            raise DataError(where, field, f"a column named {column!r} (--columns); the data has "
                            f"{', '.join(columns) or 'no columns'}", "no such column")
        if family and field not in known:
            raise ConfigError("--columns", field, f"a field of {family}: {', '.join(sorted(known))}", field)
        resolved[field] = column
    for spec in specs:
        if spec.name in resolved:
            continue
        found = next((column for column in spec.columns if column in columns), None)
        if found is not None:
            resolved[spec.name] = found
        elif spec.required:
            raise DataError(where, spec.name, f"a column for '{spec.name}' (tried {', '.join(spec.columns)}; "
                            f"map one with --columns {spec.name}=COLUMN); the data has {', '.join(columns)}",
                            "missing column")
    return resolved


def read_labels(text: str | None) -> dict[str, str] | None:
    """--labels `0=negative,1=positive`, or a file: a JSON object, a JSON list (index -> name), or lines."""
    if not text:
        return None
    path = Path(text)
    if path.is_file():
        return _labels_file(path)
    labels: dict[str, str] = {}
    for part in text.split(","):
        raw, sep, shown = part.partition("=")
        if not sep or not raw.strip() or not shown.strip():
            raise ConfigError("--labels", None, "value=label pairs separated by commas, or a file", part.strip())
        labels[raw.strip()] = shown.strip()
    return labels


def _labels_file(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        loaded = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(loaded, dict):
        return {str(key): str(value) for key, value in loaded.items()}
    if isinstance(loaded, list):
        # A list of names: the data may hold their index (the hub's ClassLabel) or the name itself.
        return {str(n): str(name) for n, name in enumerate(loaded)} | {str(name): str(name) for name in loaded}
    raise ConfigError(str(path), None, "a JSON object, a JSON list of label names, or one label per line",
                      type(loaded).__name__)


def show_label(value: str) -> str:
    """A raw label as a reader sees it: `card_arrival` -> `card arrival`."""
    return value.replace("_", " ").strip()


def _text(row: Mapping[str, Any], field: str, column: str) -> str:
    value = row.get(column)
    if value is None:
        raise RowProblem("missing_value", field, f"a value in column {column!r}", "nothing")
    if isinstance(value, list):  # a list of sentences (SciTLDR's source) reads as one text
        value = " ".join(str(part).strip() for part in value if part is not None)
    text = str(value).strip()
    if not text:
        raise RowProblem("empty_text", field, "a non-empty text", "an empty one")
    return text


def _label(value: Any, labels: Mapping[str, str] | None, family: str, field: str) -> str:
    raw = str(value).strip() if value is not None else ""
    key = raw.lower() if isinstance(value, bool) else raw
    if family == "nli" and raw in _NO_LABEL:
        raise RowProblem("no_label", field, "a gold label", repr(raw))
    table = labels if labels is not None else {"nli": _NLI_LABELS, "classification": None}.get(family, _BOOLEAN)
    if table is None:
        if not raw:
            raise RowProblem("empty_text", field, "a label", "an empty one")
        return show_label(raw)
    found = table.get(key, table.get(key.lower()))
    if found is None:
        raise RowProblem("unknown_label", field, f"one of {', '.join(sorted(table)[:12])}"
                         + (" …" if len(table) > 12 else "") + " (--labels)", repr(raw))
    return found


def _answers(value: Any, context: str) -> list[tuple[str, int | None]]:
    """(text, answer_start) pairs from the flattened dict, a list of {text, answer_start}, or a plain string."""
    if isinstance(value, dict):
        texts, starts = list(value.get("text") or []), list(value.get("answer_start") or [])
        return [(str(t), starts[n] if n < len(starts) else None) for n, t in enumerate(texts)]
    if isinstance(value, list):
        return [(str(a.get("text")), a.get("answer_start")) if isinstance(a, dict) else (str(a), None)
                for a in value]
    return [] if value is None or not str(value).strip() else [(str(value), None)]


def _first_answer(row: Mapping[str, Any], column: str, context: str, unanswerable: str | None) -> str:
    answers = _answers(row.get(column), context)
    if not answers:
        if unanswerable is None:
            raise RowProblem("unanswerable", "answers", "an answer (or --unanswerable TEXT)", "none")
        return unanswerable
    for text, start in answers:
        if start is not None and context[int(start):int(start) + len(text)] != text:
            found = context[int(start):int(start) + len(text)]
            raise RowProblem("bad_answer_start", "answer_start",
                             f"context[{start}:] to start with the answer {text!r}", repr(found))
    text = answers[0][0].strip()
    if not text:
        raise RowProblem("empty_text", "answers", "a non-empty answer", "an empty one")
    return text


Reader = Callable[[Mapping[str, Any]], dict[str, Any]]


def field_reader(family: str, columns: Mapping[str, str], labels: Mapping[str, str] | None,
                 unanswerable: str | None) -> Reader:
    """A function from a raw row to the family's fields (raising RowProblem)."""
    def read(row: Mapping[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for spec in FAMILY_FIELDS[family]:
            column = columns.get(spec.name)
            if column is None or spec.name in ("answers", "is_impossible", "id"):
                continue
            if spec.name == "label" or (spec.name == "answer" and family == "yes-no-qa"):
                fields[spec.name] = _label(row.get(column), labels, family, spec.name)
            elif spec.name == "summary":
                fields[spec.name] = _text({column: _first(row.get(column))}, spec.name, column)
            elif spec.required or row.get(column) not in (None, ""):
                fields[spec.name] = _text(row, spec.name, column)
        if family == "extractive-qa":
            # Offsets count in the raw context, before the stripping `_text` does.
            fields["answer"] = _first_answer(row, columns["answers"], str(row[columns["context"]]), unanswerable)
        return fields

    return read


def _first(value: Any) -> Any:
    """A list of reference summaries (SciTLDR has several per paper): the first non-empty one."""
    if isinstance(value, list):
        return next((item for item in value if item is not None and str(item).strip()), "")
    return value
