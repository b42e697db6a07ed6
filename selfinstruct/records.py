"""The records that travel the pipeline, validated at every boundary."""

from __future__ import annotations

from typing import Literal

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
