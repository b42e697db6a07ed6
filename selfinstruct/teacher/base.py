"""The teacher protocol: what the request cache asks of a client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..core.config import Api
from ..core.teacher_records import TeacherReply, TeacherRequest

if TYPE_CHECKING:
    from .usage import Usage


class Teacher(Protocol):
    """What the request cache asks (`cache.CachedTeacher`): `OpenAITeacher`, or `BatchTeacher` in batch mode.

    `complete` raises `TeacherRequestFailed` for a request that failed for good (it is dead-lettered);
    any other `TeacherError` stops the run.
    """

    api: Api
    model: str

    async def complete(self, request: TeacherRequest, usage: Usage | None = None) -> TeacherReply: ...

    def raise_if_failing(self) -> None: ...

    async def close(self) -> None: ...
