"""The shape of a filter decision and the drop reasons, defined once.

Reasons are stable snake_case names: the store, the report and the CLI group by them.
"""

from __future__ import annotations

from dataclasses import dataclass

TOO_SHORT = "too_short"
TOO_LONG = "too_long"
BLACKLIST = "blacklist"
PROGRAM_PREFIX = "program_prefix"
LEADING_PUNCTUATION = "leading_punctuation"
NON_ASCII_START = "non_ascii_start"
ROUGE = "rouge"
MINHASH = "minhash"
EMPTY_OUTPUT = "empty_output"
TRUNCATED = "truncated"
TEACHER_FAILED = "teacher_failed"
STRUCTURED_INVALID = "structured_invalid"  # a JSON reply that did not match its stage's schema, asked twice

ALL_REASONS = (
    TOO_SHORT, TOO_LONG, BLACKLIST, PROGRAM_PREFIX, LEADING_PUNCTUATION, NON_ASCII_START,
    ROUGE, MINHASH, EMPTY_OUTPUT, TRUNCATED, TEACHER_FAILED, STRUCTURED_INVALID,
)


@dataclass(frozen=True)
class Verdict:
    """Keep, or drop with a reason and the evidence for it."""

    keep: bool
    reason: str | None = None
    detail: str = ""


KEEP = Verdict(keep=True)


def drop(reason: str, detail: str = "") -> Verdict:
    return Verdict(keep=False, reason=reason, detail=detail)
