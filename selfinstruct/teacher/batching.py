"""Prompts that are ready at the same moment travel in one completions request.

The completions API takes a list of prompts and answers each with its own
choice (Self-Instruct and Alpaca send theirs five at a time). A vLLM server
schedules every prompt of the list as its own sequence, so nothing is lost on
the server, while the client pays its per-request cost (building, sending and
reading an HTTP request through the SDK, about 1.5 ms of CPU here) once per
batch instead of once per prompt.

`PromptBatcher.submit` queues a prompt and waits for its reply. A batch leaves
when it holds `size` prompts, or LINGER seconds after its first prompt: under
load, replies come back a few at a time and each frees a few slots, so without
the wait batches stay as small as the replies that freed them (measured: about
12 prompts per request at 128 in flight, 21 with 10 ms). Prompts with different
decoding parameters go in different batches (one request has one set).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from ..core.config import Decoding
from ..core.teacher_records import TeacherReply, TeacherRequest

# One outcome per prompt, in the order sent: its reply, or why its choice was unusable.
SendBatch = Callable[[list[TeacherRequest]], Awaitable[Sequence[TeacherReply | Exception]]]

_Waiting = tuple[TeacherRequest, "asyncio.Future[TeacherReply]"]
LINGER = 0.01  # seconds: next to a teacher's latency (0.5 s and more), nothing; to the client, half the requests


class PromptBatcher:
    def __init__(self, send: SendBatch, size: int) -> None:
        if size < 1:
            raise ValueError("a batch holds at least one prompt")
        self._send = send
        self.size = size
        self._open: dict[Decoding, list[_Waiting]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(self, request: TeacherRequest) -> TeacherReply:
        """The reply to `request`; raises what sending its batch raised, for every prompt in it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TeacherReply] = loop.create_future()
        batch = self._open.get(request.decoding)
        if batch is None:
            batch = self._open[request.decoding] = []
            loop.call_later(LINGER, self._flush, request.decoding, batch)
        batch.append((request, future))
        if len(batch) >= self.size:
            self._flush(request.decoding, batch)
        return await future

    def _flush(self, key: Decoding, batch: list[_Waiting]) -> None:
        if self._open.get(key) is not batch:
            return  # already sent because it was full
        del self._open[key]
        task = asyncio.create_task(self._deliver(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, batch: list[_Waiting]) -> None:
        live = [(request, future) for request, future in batch if not future.done()]  # skip cancelled askers
        if not live:
            return
        try:
            outcomes = await self._send([request for request, _ in live])
        except asyncio.CancelledError:
            for _, future in live:
                future.cancel()
            raise
        except Exception as err:  # noqa: BLE001 - every asker of the batch gets the error, and decides
            for _, future in live:
                if not future.done():
                    future.set_exception(err)
            return
        for (_, future), outcome in zip(live, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def close(self) -> None:
        """Stop batches on their way (their askers see CancelledError)."""
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
