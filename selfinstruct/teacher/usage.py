"""Accounting of teacher requests: tokens, requests and seconds per stage, failures by error class.

A round's `Usage` points at the run's (its `parent`), so one call counts in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..core.teacher_records import TeacherReply


@dataclass
class StageUsage:
    """What one stage (instructions, classify, instances, alpaca) cost."""

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"requests": self.requests, "cached": self.cached, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 3)}


@dataclass
class Usage:
    """Summed over replies. `requests` were answered by the teacher, `cached` by the store, `failed` by nobody.

    `errors` counts every failed attempt by error class (retried or not); `dead` the requests that ran out
    of attempts and were dead-lettered, by the class of their last error.
    """

    requests: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    by_stage: dict[str, StageUsage] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    parent: Usage | None = field(default=None, repr=False, compare=False)

    def _chain(self) -> Iterator[Usage]:
        usage: Usage | None = self
        while usage is not None:
            yield usage
            usage = usage.parent

    def add(self, stage: str, reply: TeacherReply) -> None:
        for usage in self._chain():
            usage._add(stage, reply)

    def _add(self, stage: str, reply: TeacherReply) -> None:
        per_stage = self.by_stage.setdefault(stage, StageUsage())
        if reply.cached:
            self.cached += 1
            per_stage.cached += 1
            return
        self.requests += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.seconds += reply.seconds
        per_stage.requests += 1
        per_stage.prompt_tokens += reply.prompt_tokens
        per_stage.completion_tokens += reply.completion_tokens
        per_stage.seconds += reply.seconds

    def attempt_failed(self, error_class: str) -> None:
        for usage in self._chain():
            usage.errors[error_class] = usage.errors.get(error_class, 0) + 1

    def dead_lettered(self, error_class: str) -> None:
        for usage in self._chain():
            usage.failed += 1
            usage.dead[error_class] = usage.dead.get(error_class, 0) + 1

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def retried(self) -> int:
        """Failed attempts that were tried again (the rest were dead-lettered)."""
        return sum(self.errors.values()) - self.failed
