"""The records that travel the pipeline, validated at every boundary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


class Instance(BaseModel):
    """One input/output pair of a task; `input` may be empty."""

    # Strict: a seed file's "output": 5 or "is_classification": "yes" is a mistake to report, not to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    input: str = ""
    output: str


class SeedTask(BaseModel):
    """A human-written task in the Self-Instruct seed format."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str
    name: str = ""
    instruction: str
    instances: list[Instance] = Field(min_length=1)
    is_classification: bool = False

    _check_instruction = field_validator("instruction")(_non_blank)
    _check_id = field_validator("id")(_non_blank)


class AlpacaExample(BaseModel):
    """The shape trainers read: alpaca_data.json is a list of these."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instruction: str
    input: str = ""
    output: str

    _check_instruction = field_validator("instruction")(_non_blank)


Method = Literal["self-instruct", "alpaca"]


class Candidate(BaseModel):
    """A machine-proposed task on its way through the filters."""

    model_config = ConfigDict(frozen=True)

    instruction: str
    instances: tuple[Instance, ...] = ()
    is_classification: bool = False
    round: int = 0
    prompt_hash: str = ""
    demo_ids: tuple[str, ...] = ()
    nearest: str | None = None
    nearest_rouge_l: float = 0.0


class Rejection(BaseModel):
    """A dropped candidate, kept with its reason and evidence."""

    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    reason: str
    detail: str = ""


# The provenance every grown task carries (the store keeps it per task; verify checks it). provenance.jsonl lists
# PROVENANCE_KEYS first for every row, then the row's own keys such as the instance's position.
TASK_PROVENANCE_KEYS = ("teacher", "backend", "method", "round", "demo_ids", "prompt_hash", "is_classification",
                        "nearest", "nearest_rouge_l")
# The judge's verdict on each row (selfinstruct/judge), added at export time: None on a row no judge has scored.
JUDGE_PROVENANCE_KEYS = ("score", "judge_reason", "category", "difficulty", "judge_model", "rubric_version")
PROVENANCE_KEYS = TASK_PROVENANCE_KEYS + JUDGE_PROVENANCE_KEYS


class ExampleRow(BaseModel):
    """One exported training row, whichever route made it (a grown task's instance, a converted record).

    `group` keeps related rows together: rows of one group never straddle train and validation (a grown task's
    instances are one group). `split` is a split fixed by the source data ("train", "validation", "test"); None
    leaves the choice to the hash split.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruction: str
    input: str = ""
    output: str
    group: str
    split: str | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    def alpaca(self) -> AlpacaExample:
        return AlpacaExample(instruction=self.instruction, input=self.input, output=self.output)


class Judgement(BaseModel):
    """The judge's verdict on one exported row (a grown task's instance), or why it has none (`score` None).

    Kept per judge model and rubric version: judging again with another of either adds judgements, never
    replaces them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: int
    instance: int
    judge_model: str
    rubric_version: str
    score: int | None = Field(None, ge=1, le=5)  # None: unjudged, `reason` says why
    reason: str = ""
    category: str | None = None
    difficulty: str | None = None
    request_key: str | None = None  # the cache key of the reply it was read from
    created: float = 0.0

    @property
    def judged(self) -> bool:
        return self.score is not None


class JudgeTarget(BaseModel):
    """One row the judge is asked about: a grown task's instance, with the task's id and the instance's position."""

    model_config = ConfigDict(frozen=True)

    task_id: int
    instance: int
    instruction: str
    input: str = ""
    output: str
