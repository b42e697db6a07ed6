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

# Self-Instruct's instance filters (filters/instances.py).
INSTANCE_REPEATED = "instance_repeated"
INSTANCE_INPUT_IS_OUTPUT = "instance_input_is_output"
INSTANCE_ENDS_WITH_COLON = "instance_ends_with_colon"
CONFLICTING_OUTPUTS = "conflicting_outputs"

# Checks of what an answer says (filters/answers.py).
ANSWER_REFUSAL = "answer_refusal"
ANSWER_PLACEHOLDER = "answer_placeholder"
ANSWER_NO_INPUT_MARKER = "answer_no_input_marker"
ANSWER_MISSING_INPUT = "answer_missing_input"
ANSWER_CUT_OFF = "answer_cut_off"
ANSWER_REPETITION = "answer_repetition"
ANSWER_RESTATES_INSTRUCTION = "answer_restates_instruction"
ANSWER_PROMPT_LEAK = "answer_prompt_leak"
ANSWER_WRONG_SCRIPT = "answer_wrong_script"

INSTANCE_REASONS = (INSTANCE_REPEATED, INSTANCE_INPUT_IS_OUTPUT, INSTANCE_ENDS_WITH_COLON, CONFLICTING_OUTPUTS)
ANSWER_REASONS = (
    ANSWER_REFUSAL, ANSWER_PLACEHOLDER, ANSWER_NO_INPUT_MARKER, ANSWER_MISSING_INPUT, ANSWER_CUT_OFF,
    ANSWER_REPETITION, ANSWER_RESTATES_INSTRUCTION, ANSWER_PROMPT_LEAK, ANSWER_WRONG_SCRIPT,
)

ALL_REASONS = (
    TOO_SHORT, TOO_LONG, BLACKLIST, PROGRAM_PREFIX, LEADING_PUNCTUATION, NON_ASCII_START,
    ROUGE, MINHASH, EMPTY_OUTPUT, TRUNCATED, TEACHER_FAILED, STRUCTURED_INVALID, *INSTANCE_REASONS,
    *ANSWER_REASONS,
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
