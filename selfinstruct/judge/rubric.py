"""The judge's rubric, its tags and its prompt; the verdict's pydantic model and the strict JSON schema sent for it.

A one-line reason, then one score from 1 to 5 over four criteria (follows the instruction, correct, complete,
harmless), a task category from CATEGORIES and a difficulty. The prompt names the rubric's version, so a new
version is a new prompt: new requests, new cache keys, judgements stored beside the old ones. Pure.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from ..core.records import JudgeTarget
from ..generate.reply_models import strict_schema

# Task categories: Dolly's (brainstorming, classification, closed/open QA, creative writing, extraction,
# summarization) with coding, math and rewriting, which self-instruct pools hold many of; "other" for the rest.
Category = Literal["brainstorming", "classification", "closed_qa", "coding", "creative_writing", "extraction", "math",
                   "open_qa", "rewriting", "summarization", "other"]
Difficulty = Literal["easy", "medium", "hard"]
CATEGORIES: tuple[str, ...] = get_args(Category)
DIFFICULTIES: tuple[str, ...] = get_args(Difficulty)
COMPLETIONS_PREFIX = "Reason:"  # the completions prompt ends with it; the reply continues it
REASON_CHARS = 200  # the schema's maxLength: a constrained decoder closes the string there instead of rambling
FIELD_CHARS = 2500  # of each of instruction, input and response shown to the judge (a 4096-token context)

RUBRIC = """Score the RESPONSE to the INSTRUCTION (and its INPUT, if any) from 1 to 5:
5 = follows the instruction, is correct, complete and harmless.
4 = follows the instruction and is harmless, with one small error or omission.
3 = partly follows the instruction, or has a clear error, or leaves out an important part.
2 = mostly wrong, off the task, or badly incomplete.
1 = ignores the instruction, is nonsense, or is harmful.
Give a one-line reason. Tag the task with one category: {categories}.
Tag its difficulty for a capable assistant: easy, medium or hard."""

# The text form's example verdict. A reply repeating its reason copied the example (the bundled model on the
# completions API did for 31 rows of 31, measured): the reader refuses it.
EXAMPLE_REASON = "The answer is correct but leaves out one of the three items asked for."
TEXT_ANSWER = f"""Answer in exactly four lines, for example:
Reason: {EXAMPLE_REASON}
Score: 4
Category: brainstorming
Difficulty: easy"""

JSON_ANSWER = ('Answer with one JSON object with the keys "reason" (one sentence), "score" (a whole number from 1 '
               'to 5, by the rubric), "category" and "difficulty".')


class JudgementReply(BaseModel):
    """The verdict a structured judge reply holds. The reason comes first: a model writes the properties in schema
    order, so its score follows from what it said (on 31 fake-teacher rows, with the score first the bundled 135M
    model gave 30 a 1, greedily; with the reason first 19 ones, 2 twos and 10 fives; measured 2026-12-02)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: str = Field(max_length=REASON_CHARS)
    score: Literal[1, 2, 3, 4, 5]
    category: Category
    difficulty: Difficulty


@lru_cache(maxsize=1)
def judge_response_format() -> str:
    """The `response_format` (OpenAI json_schema, strict) as the JSON text a TeacherRequest carries."""
    strict = strict_schema(JudgementReply)
    return json.dumps({"type": "json_schema", "json_schema": {"name": "judgement", "schema": strict, "strict": True}})


def _shown(text: str) -> str:
    return text if len(text) <= FIELD_CHARS else text[:FIELD_CHARS] + " [...cut]"


def judge_prompt(target: JudgeTarget, rubric_version: str, structured: bool, completions: bool = False) -> str:
    """The prompt for one row. On the completions API it ends in "Reason:", for the model to continue."""
    parts = [f"You grade one example of an instruction-tuning dataset (rubric {rubric_version}).",
             RUBRIC.format(categories=", ".join(CATEGORIES)), "",
             f"INSTRUCTION:\n{_shown(target.instruction)}"]
    if target.input.strip():
        parts.append(f"INPUT:\n{_shown(target.input)}")
    parts += [f"RESPONSE:\n{_shown(target.output)}", "", JSON_ANSWER if structured else TEXT_ANSWER]
    if completions:
        parts.append(f"\n{COMPLETIONS_PREFIX}")
    return "\n".join(parts)


def schema_of_reply() -> dict[str, Any]:
    """The strict schema itself, for docs and tests."""
    return json.loads(judge_response_format())["json_schema"]["schema"]
