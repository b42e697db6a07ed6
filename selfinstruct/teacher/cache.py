"""Ask the teacher through the run's store: stored answers are reused, failures dead-lettered.

The cache key (`TeacherRequest.cache_key`) covers the api (chat or completions), the model, the prompt,
the decoding parameters and the sample number, not the endpoint: every server of one model shares
the answers. A dead-lettered request has no stored answer, so a later run sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..core.store import Store
from .base import Teacher
from ..core.teacher_records import TeacherReply, TeacherRequest
from .openai_compat import TeacherRequestFailed
from .usage import Usage

__all__ = ["CachedTeacher", "ReplyWriter", "Usage"]

log = logging.getLogger(__name__)


class ReplyWriter:
    """Stores replies before they are used, all those that arrive in one turn of the event loop in one
    transaction: a batched request's replies arrive together, and a transaction per reply cost more
    than the inserts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[tuple[str, str, str, TeacherReply]] = []
        self._waiting: list[asyncio.Future[None]] = []

    async def save(self, key: str, stage: str, prompt: str, reply: TeacherReply) -> None:
        """Returns once the reply is stored; raises StoreError if it could not be."""
        loop = asyncio.get_running_loop()
        if not self._rows:
            loop.call_soon(self._flush)
        stored: asyncio.Future[None] = loop.create_future()
        self._rows.append((key, stage, prompt, reply))
        self._waiting.append(stored)
        await stored

    def _flush(self) -> None:
        rows, waiting = self._rows, self._waiting
        self._rows, self._waiting = [], []
        try:
            self.store.save_replies(rows)
        except Exception as err:  # noqa: BLE001 - each waiter raises it where the reply would have been used
            for stored in waiting:
                if not stored.done():
                    stored.set_exception(err)
            return
        for stored in waiting:
            if not stored.done():
                stored.set_result(None)


@dataclass
class CachedTeacher:
    teacher: Teacher
    store: Store
    usage: Usage = field(default_factory=Usage)
    # Requests on their way, by cache key: a second ask of the same key waits for the first instead of
    # paying again (a reply may list one instruction twice). Shared across a session's pipelined rounds.
    inflight: dict[str, asyncio.Future[TeacherReply | None]] = field(default_factory=dict)
    writer: ReplyWriter | None = None  # shared across a session's rounds; one of its own if not given

    def __post_init__(self) -> None:
        self._writer = self.writer or ReplyWriter(self.store)

    async def ask(self, request: TeacherRequest) -> TeacherReply | None:
        """The reply, stored before it is used; None when the request failed for good."""
        key = request.cache_key(self.teacher.api, self.teacher.model)
        reply = self.store.cached_reply(key)
        if reply is None:
            pending = self.inflight.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self._send(key, request))
                self.inflight[key] = pending
                pending.add_done_callback(lambda _: self.inflight.pop(key, None))
                reply = await asyncio.shield(pending)
            else:
                shared = await asyncio.shield(pending)
                reply = shared.model_copy(update={"cached": True}) if shared is not None else None
            if reply is None:
                return None
        self.usage.add(request.stage, reply)
        return reply

    async def _send(self, key: str, request: TeacherRequest) -> TeacherReply | None:
        try:
            reply = await self.teacher.complete(request, self.usage)
        except TeacherRequestFailed as err:
            self.usage.dead_lettered(err.error_class)
            log.warning("%s request dead-lettered: %s", request.stage, err)
            self.store.save_dead_letter(key, request.stage, request.prompt, str(err))
            self.teacher.raise_if_failing()
            return None
        await self._writer.save(key, request.stage, request.prompt, reply)
        return reply

    async def ask_all(self, requests: list[TeacherRequest]) -> list[TeacherReply | None]:
        return list(await asyncio.gather(*(self.ask(request) for request in requests)))
