"""Ask the teacher through the run's store: stored answers are reused, failures dead-lettered."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..errors import TeacherError
from ..store import Store
from .base import TeacherReply, TeacherRequest
from .openai_compat import OpenAITeacher

log = logging.getLogger(__name__)


@dataclass
class Usage:
    """Accounting for one round (or a whole run): summed over replies."""

    requests: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)

    def add(self, stage: str, reply: TeacherReply) -> None:
        if reply.cached:
            self.cached += 1
            return
        self.requests += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.by_stage[stage] = self.by_stage.get(stage, 0) + reply.prompt_tokens + reply.completion_tokens


@dataclass
class CachedTeacher:
    teacher: OpenAITeacher
    store: Store
    usage: Usage = field(default_factory=Usage)

    async def ask(self, request: TeacherRequest) -> TeacherReply | None:
        """The reply, stored before it is used; None when the request failed for good."""
        key = request.cache_key(self.teacher.api, self.teacher.model)
        reply = self.store.cached_reply(key)
        if reply is None:
            try:
                reply = await self.teacher.complete(request)
            except TeacherError as err:
                self.usage.failed += 1
                log.warning("%s request dead-lettered: %s", request.stage, err)
                self.store.save_dead_letter(key, request.stage, request.prompt, str(err))
                return None
            self.store.save_reply(key, request.stage, request.prompt, reply)
        self.usage.add(request.stage, reply)
        return reply

    async def ask_all(self, requests: list[TeacherRequest]) -> list[TeacherReply | None]:
        return list(await asyncio.gather(*(self.ask(request) for request in requests)))
