"""Reading a judge's reply into a verdict: the structured JSON we ask for, and the shapes models write without it.

A JSON object (bare, in a ```json fence, after a preamble) is read by its keys; otherwise labelled lines
("Score: 4", "**Rating:** 4/5", "Reason: ...", "Category: coding"), a sentence ("I would rate this 3 out of 5
because ..."), or a bare score on the first line. A reply with no score from 1 to 5 raises JudgeReplyInvalid;
a category we do not list becomes "other", a missing tag None. Pure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..core.sanitize import sanitize_line
from ..generate.parse_json import find_json
from ..generate.parse_lines import strip_emphasis
from .rubric import CATEGORIES, DIFFICULTIES, EXAMPLE_REASON, REASON_CHARS

SCORE_KEYS = ("score", "rating", "grade", "overall_score", "overall", "final_score")
REASON_KEYS = ("reason", "explanation", "rationale", "justification", "comment", "feedback")
CATEGORY_KEYS = ("category", "task_category", "task_type", "type")
DIFFICULTY_KEYS = ("difficulty", "level", "difficulty_level")

_LABEL = r"^[ \t>*_#\-\"']*({names})[\s*_\"']*(?:\([^)]*\))?[\s*_\"']*[:=\-]\s*"
_SCORE_LINE = re.compile(_LABEL.format(names=r"overall\s+score|final\s+score|score|rating|grade") + r"(.*)$",
                         re.IGNORECASE | re.MULTILINE)
_REASON_LINE = re.compile(_LABEL.format(names=r"reason|explanation|rationale|justification|comment|feedback")
                          + r"(.*)$", re.IGNORECASE | re.MULTILINE)
_CATEGORY_LINE = re.compile(_LABEL.format(names=r"task\s+category|category|task\s+type") + r"(.*)$",
                            re.IGNORECASE | re.MULTILINE)
_DIFFICULTY_LINE = re.compile(_LABEL.format(names=r"difficulty(?:\s+level)?|level") + r"(.*)$",
                              re.IGNORECASE | re.MULTILINE)
_JSON_FIELD = re.compile(r'"(\w+)"\s*:\s*(?:"((?:[^"\\]|\\.)*)"?|([^,"}\n]+))')
# A number, optionally "out of 5" or "/5", at the start of a value ("4", "4/5", "**4** out of 5", "4.0").
# Not a range: a model copying the template's "Score: 1-5" gave no score.
_NUMBER = re.compile(r"^[\s*_\"'\[(]*(\d+(?:\.\d+)?)(?!\s*(?:-|–|to)\s*\d)[\s*_\"'\])]*(?:(?:/|out\s+of)\s*(\d+))?")
_SENTENCE_SCORE = re.compile(
    r"\b(?:rate|rated|rating|score|scored|give|grade)\s+(?:(?:this|it|the\s+response|the\s+answer|this\s+response|"
    r"this\s+example)\s+)?(?:(?:a|an|as|at|of)\s+)?\**(\d(?:\.\d+)?)\**(?:\s*(?:/|out\s+of)\s*(\d+))?",
    re.IGNORECASE)
_OUT_OF_FIVE = re.compile(r"\b(\d(?:\.\d+)?)\s*(?:/|out\s+of)\s*5\b", re.IGNORECASE)
_LEAD = re.compile(r"^[\s,.;:\-–—)]*(?:because\s+|as\s+)?", re.IGNORECASE)
# Words that point at one of our categories, checked in this order after an exact match failed.
_CATEGORY_HINTS: tuple[tuple[str, str], ...] = (
    ("closed qa", "closed_qa"), ("reading comprehension", "closed_qa"), ("open qa", "open_qa"),
    ("question answering", "open_qa"), ("brainstorm", "brainstorming"), ("idea", "brainstorming"),
    ("classif", "classification"), ("sentiment", "classification"), ("code", "coding"), ("coding", "coding"),
    ("program", "coding"), ("math", "math"), ("arithmetic", "math"), ("calculat", "math"),
    ("summar", "summarization"), ("extract", "extraction"), ("rewrit", "rewriting"), ("paraphras", "rewriting"),
    ("edit", "rewriting"), ("translat", "rewriting"), ("creative", "creative_writing"), ("story", "creative_writing"),
    ("poem", "creative_writing"), ("writing", "creative_writing"), ("qa", "open_qa"), ("question", "open_qa"),
)
_DIFFICULTY_HINTS = (("easy", "easy"), ("simple", "easy"), ("medium", "medium"), ("moderate", "medium"),
                     ("intermediate", "medium"), ("hard", "hard"), ("difficult", "hard"), ("challenging", "hard"))


class JudgeReplyInvalid(ValueError):
    """A judge reply holding no usable score; `detail` says what was wrong, briefly."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"judge reply unusable: {detail}")
        self.detail = detail


@dataclass(frozen=True)
class Verdict:
    """What one judge reply says about one row."""

    score: int
    reason: str
    category: str | None
    difficulty: str | None


def read_verdict(text: str, prefix: str = "") -> Verdict:
    """The verdict in a reply; `prefix` is prompt text the reply continues (the completions API's "Reason:").

    A verdict whose reason is the prompt's example reason was copied from the prompt, not given: refused.
    """
    verdict = _read(prefix + text)
    if _words(verdict.reason) == _words(EXAMPLE_REASON):
        raise JudgeReplyInvalid("the reply copies the prompt's example verdict")
    return verdict


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _read(text: str) -> Verdict:
    value = find_json(text)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0]
    if isinstance(value, dict):
        verdict = _from_json(value)
        if verdict is not None:
            return verdict
    elif value is None and (fields := _partial_json(text)):
        verdict = _from_json(fields)  # an object the length limit cut: the fields that arrived whole or in part
        if verdict is not None:
            return verdict
    return _from_text(text)


def _partial_json(text: str) -> dict[str, str]:
    """The "key": value pairs of a JSON object cut before its end (a string cut inside is kept as far as it got)."""
    return {match.group(1): (match.group(2) or match.group(3) or "").strip() for match in _JSON_FIELD.finditer(text)}


def _from_json(value: dict[str, Any]) -> Verdict | None:
    """None when the object has no score at all (the text around it may): an unusable score raises."""
    fields = {_key(key): item for key, item in value.items()}
    if not any(key in fields for key in SCORE_KEYS):
        nested = next((item for item in value.values() if isinstance(item, dict)), None)
        return _from_json(nested) if nested is not None else None
    raw = next(fields[key] for key in SCORE_KEYS if key in fields)
    score = _score(str(raw) if not isinstance(raw, str) else raw)
    reason = next((str(fields[key]) for key in REASON_KEYS if fields.get(key) is not None), "")
    category = next((str(fields[key]) for key in CATEGORY_KEYS if fields.get(key) is not None), None)
    difficulty = next((str(fields[key]) for key in DIFFICULTY_KEYS if fields.get(key) is not None), None)
    return Verdict(score, _reason(reason), _category(category), _difficulty(difficulty))


def _key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", key.strip().lower())


def _from_text(text: str) -> Verdict:
    labelled = _SCORE_LINE.search(text)
    rest = ""
    if labelled is not None and _NUMBER.match(labelled.group(2)):
        score = _score(labelled.group(2))
        rest = labelled.group(2)[_NUMBER.match(labelled.group(2)).end():]  # type: ignore[union-attr]
    elif (sentence := _SENTENCE_SCORE.search(text)) is not None:
        score = _score(sentence.group(1) + (f"/{sentence.group(2)}" if sentence.group(2) else ""))
        rest = text[sentence.end():].split("\n", 1)[0]
    elif (out_of := _OUT_OF_FIVE.search(text)) is not None:
        score = _score(out_of.group(1))
        rest = text[out_of.end():].split("\n", 1)[0]
    elif (first := _first_line(text)) is not None and _NUMBER.fullmatch(first.strip().rstrip(".")):
        score = _score(first)
    elif labelled is not None:
        raise JudgeReplyInvalid(f"no number after {labelled.group(1).strip()!r}: {_quote(labelled.group(2))}")
    else:
        raise JudgeReplyInvalid(f"no score in the reply: {_quote(text)}")
    reason_line = _REASON_LINE.search(text)
    reason = reason_line.group(2) if reason_line else _LEAD.sub("", rest)
    if not reason.strip():
        reason = _unlabelled_line(text)
    category = _CATEGORY_LINE.search(text)
    difficulty = _DIFFICULTY_LINE.search(text)
    return Verdict(score, _reason(reason), _category(category.group(2)) if category else None,
                   _difficulty(difficulty.group(2)) if difficulty else None)


def _score(text: str) -> int:
    found = _NUMBER.match(text.strip())
    if found is None:
        raise JudgeReplyInvalid(f"the score is not a number: {_quote(text)}")
    value, scale = float(found.group(1)), found.group(2)
    if scale is not None and scale != "5":
        raise JudgeReplyInvalid(f"a score out of {scale}, not out of 5: {_quote(text)}")
    if not 1 <= value <= 5:
        raise JudgeReplyInvalid(f"score {found.group(1)} outside 1-5")
    return math.floor(value)  # a judge between 4 and 5 ("4.5") gets the lower score


def _first_line(text: str) -> str | None:
    return next((line for line in text.split("\n") if line.strip()), None)


def _unlabelled_line(text: str) -> str:
    """The first line of substance that is neither a labelled field nor a bare score."""
    for line in text.split("\n"):
        stripped = strip_emphasis(line.strip())
        if not stripped or stripped.startswith(("{", "}", "```")):
            continue
        if any(pattern.match(line) for pattern in (_SCORE_LINE, _CATEGORY_LINE, _DIFFICULTY_LINE)):
            continue
        if _NUMBER.fullmatch(stripped.rstrip(".")):
            continue
        return stripped
    return ""


def _reason(text: str) -> str:
    line = strip_emphasis(sanitize_line(text)).strip().strip("\"'").strip()
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def _placeholder(text: str) -> bool:
    """The template's own words copied back ("<one category>"), not an answer."""
    return bool(re.search(r"<[^>]*>", text))


def _category(text: str | None) -> str | None:
    if text is None or _placeholder(text):
        return None
    words = re.sub(r"[^a-z ]+", " ", text.lower().replace("_", " ").replace("-", " ")).split()
    if not words:
        return None
    exact = "_".join(words)
    if exact in CATEGORIES:
        return exact
    joined = " ".join(words)
    return next((category for hint, category in _CATEGORY_HINTS if re.search(rf"\b{hint}", joined)), "other")


def _difficulty(text: str | None) -> str | None:
    if text is None or _placeholder(text):
        return None
    lowered = text.lower()
    if lowered.strip() in DIFFICULTIES:
        return lowered.strip()
    return next((level for hint, level in _DIFFICULTY_HINTS if hint in lowered), None)


def _quote(text: str, limit: int = 60) -> str:
    line = sanitize_line(text)
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")
