"""Batch mode: the requests that arrive together go out as one batch, and each asker gets its line's reply.

`BatchTeacher` has the interface the request cache uses (`base.Teacher`), so the pipeline and the cache
stay as they are: a stage's requests (those of every round in flight) arrive within moments of each
other; once no new one has come for `gather_seconds`, they are written as batch files (`batch_files`),
each line's `custom_id` the request's cache key, and handed to a runner: the OpenAI Batch API
(`batch_api.py`) or `vllm run-batch` on a local model (`batch_vllm.py`).

A batch is paid for once it is submitted, so it is recorded in the store with its requests before it is
handed over. A run that starts finds the batches an earlier run left open and follows them (polls the
Batch API, or waits for a run-batch process still running, or reads the output file it left), so a
resumed run, or the next night's flow run, collects them instead of paying again. A batch's replies are
stored together with its collected status, also those no round of this run asks for any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import Api, GrowConfig
from ..core.errors import TeacherError
from ..core.store import BatchRecord, Store
from ..core.teacher_records import TeacherReply, TeacherRequest
from .batch_runner import FAILED, BatchRunner
from .batch_files import ENDPOINTS, InputLine, LineFailure, LineOutcome, input_line, read_output, split_input
from .openai_compat import TeacherRequestFailed, request_body
from .backend import Endpoints
from .retry import OTHER
from .usage import Usage

log = logging.getLogger(__name__)

# A stage's requests arrive within one turn of the event loop or a few; half a second of quiet means the
# stage is complete, and costs nothing next to a batch's minutes.
GATHER_SECONDS = 0.5


@dataclass
class _Asked:
    """A request some round waits for, with each waiter's future and usage."""

    request: TeacherRequest
    waiters: list[tuple[asyncio.Future[TeacherReply], Usage | None]] = field(default_factory=list)


@dataclass
class BatchTeacher:
    runner: BatchRunner
    store: Store
    model: str
    api: Api = "chat"
    max_attempts: int = 5  # batches a request may be put in (retryable line errors) before it is dead-lettered
    gather_seconds: float = GATHER_SECONDS

    def __post_init__(self) -> None:
        self.endpoint = ENDPOINTS[self.api]
        self._asked: dict[str, _Asked] = {}
        self._queued: dict[str, TeacherRequest] = {}  # for the next batch, in arrival order
        self._in_batch: dict[str, str] = {}  # key -> id of the open batch it is in
        self._attempts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._gatherer: asyncio.Task[None] | None = None
        self._last_queued = 0.0
        self._resumed = False
        self._failure: BaseException | None = None

    def raise_if_failing(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def complete(self, request: TeacherRequest, usage: Usage | None = None) -> TeacherReply:
        """The reply to `request` once its batch is collected; TeacherRequestFailed if its line keeps failing."""
        self.raise_if_failing()
        self._follow_open_batches()
        key = request.cache_key(self.api, self.model)
        future: asyncio.Future[TeacherReply] = asyncio.get_running_loop().create_future()
        asked = self._asked.setdefault(key, _Asked(request))
        asked.waiters.append((future, usage))
        if key not in self._in_batch and key not in self._queued:
            self._queue(key, request)
        try:
            return await future
        finally:
            if future.cancelled():  # its round was cancelled: a later failure of the line is not retried for it
                self._forget_waiter(key, future)

    def _forget_waiter(self, key: str, future: asyncio.Future[TeacherReply]) -> None:
        asked = self._asked.get(key)
        if asked is None:
            return
        asked.waiters = [(waiter, usage) for waiter, usage in asked.waiters if waiter is not future]
        if not asked.waiters:
            del self._asked[key]
            self._queued.pop(key, None)

    async def close(self) -> None:
        """Stop polling. Open batches stay recorded in the store: the next run collects them."""
        tasks = [*self._tasks, *([self._gatherer] if self._gatherer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for asked in self._asked.values():
            for future, _ in asked.waiters:
                future.cancel()
        await self.runner.close()

    # -- batches of earlier runs ------------------------------------------------------------
    def _follow_open_batches(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        for batch in self.store.open_batches():
            if batch.runner != self.runner.name:
                log.warning("batch %s was sent through %s, not %s: it is left as it is", batch.id, batch.runner,
                            self.runner.name)
                continue
            requests = self.store.batch_requests(batch.id)
            log.info("following batch %s of an earlier run (%d requests, %s)", batch.id, len(requests), batch.status)
            self._spawn(self._follow(batch, requests), [key for key, _, _ in requests], batch.id)

    async def _follow(self, batch: BatchRecord, requests: list[tuple[str, str, str]]) -> None:
        resumed = await self.runner.resume(batch)
        if resumed is None:  # recorded but never handed over: nothing was paid, the requests go out again
            self.store.forget_batch(batch.id)
            for key, _, _ in requests:
                self._in_batch.pop(key, None)
                if (asked := self._asked.get(key)) is not None:
                    self._queue(key, asked.request)
            return
        await self._finish(resumed, requests)

    # -- new batches ----------------------------------------------------------------------------
    def _queue(self, key: str, request: TeacherRequest) -> None:
        self._queued[key] = request
        self._last_queued = time.monotonic()
        if self._gatherer is None or self._gatherer.done():
            self._gatherer = asyncio.ensure_future(self._gather())

    async def _gather(self) -> None:
        while self._queued:
            await self._quiet()
            if self.runner.exclusive:
                await self._idle()
            taken, self._queued = self._queued, {}
            lines = [input_line(key, self.endpoint, request_body(request, self.api, self.model))
                     for key, request in taken.items()]
            for chunk in split_input(lines):
                batch = BatchRecord(id=uuid.uuid4().hex, runner=self.runner.name, endpoint=self.endpoint,
                                    status="prepared")
                requests = [(line.custom_id, taken[line.custom_id].stage, taken[line.custom_id].prompt)
                            for line in chunk]
                self.store.add_batch(batch, requests)
                self._spawn(self._submit(batch, chunk, requests), [line.custom_id for line in chunk], batch.id)
                if self.runner.exclusive:
                    await self._idle()

    async def _quiet(self) -> None:
        while (idle := time.monotonic() - self._last_queued) < self.gather_seconds:
            await asyncio.sleep(self.gather_seconds - idle)

    async def _idle(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _submit(self, batch: BatchRecord, lines: list[InputLine], requests: list[tuple[str, str, str]]) -> None:
        log.info("submitting batch %s: %d %s requests", batch.id, len(lines), self.endpoint)
        await self._finish(await self.runner.submit(batch, lines), requests)

    def _spawn(self, work: object, keys: list[str], batch_id: str) -> None:
        for key in keys:
            self._in_batch[key] = batch_id
        task = asyncio.ensure_future(self._guarded(work, keys))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: object, keys: list[str]) -> None:
        try:
            await work  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - every waiter of the batch raises it; the run stops
            self._failure = err
            for key in keys:
                self._in_batch.pop(key, None)
                asked = self._asked.pop(key, None)
                for future, _ in asked.waiters if asked else ():
                    if not future.done():
                        future.set_exception(err)

    # -- results -------------------------------------------------------------------------------
    async def _finish(self, batch: BatchRecord, requests: list[tuple[str, str, str]]) -> None:
        started = time.monotonic()
        result = await self.runner.wait(batch)
        if result.status == FAILED:
            self.store.collect_batch(batch.id, FAILED, [])
            raise TeacherError(f"batch {batch.remote_id or batch.id} failed: {result.message}")
        seconds = (time.monotonic() - started) / max(1, len(requests))
        outcomes = {**read_output(result.errors, self.api, seconds), **read_output(result.output, self.api, seconds)}
        rows = [(key, stage, prompt, outcome) for key, stage, prompt in requests
                if isinstance(outcome := outcomes.get(key), TeacherReply)]
        self.store.collect_batch(batch.id, result.status, rows)
        log.info("batch %s %s: %d of %d requests answered", batch.remote_id or batch.id, result.status, len(rows),
                 len(requests))
        self._settle_all(requests, outcomes, f"batch {result.status} without a result for it")

    def _settle_all(self, requests: list[tuple[str, str, str]], outcomes: dict[str, LineOutcome],
                    missing: str) -> None:
        for key, _, _ in requests:
            self._in_batch.pop(key, None)
            self._settle(key, outcomes.get(key) or LineFailure(OTHER, missing, retryable=True))

    def _settle(self, key: str, outcome: LineOutcome) -> None:
        asked = self._asked.get(key)
        if asked is None:
            return  # no round of this run asks for it (yet): a reply is in the store, a failure is forgotten
        if isinstance(outcome, TeacherReply):
            self._resolve(key, outcome)
            return
        usage = asked.waiters[0][1] if asked.waiters else None
        if usage is not None:
            usage.attempt_failed(outcome.error_class)
        self._attempts[key] += 1
        if outcome.retryable and self._attempts[key] < self.max_attempts:
            self._queue(key, asked.request)
            return
        self._resolve(key, TeacherRequestFailed(
            f"batch request failed after {self._attempts[key]} attempt(s): {outcome.message} ({outcome.error_class})",
            outcome.error_class))

    def _resolve(self, key: str, outcome: TeacherReply | BaseException) -> None:
        asked = self._asked.pop(key)
        for future, _ in asked.waiters:
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def batch_teacher(config: GrowConfig, endpoints: Endpoints, store: Store, run_dir: Path) -> BatchTeacher:
    """The batch teacher of a config in batch mode: vllm run-batch for a local vllm model, else the Batch API."""
    from .batch_api import BatchApiRunner
    from .batch_vllm import LOCAL_POLL_SECONDS, RunBatchRunner, run_batch_command

    runner: BatchRunner
    if config.backend == "vllm" and not config.base_url:
        runner = RunBatchRunner(store, run_dir, run_batch_command(endpoints.model, config.vllm),
                                min(config.batch_poll_seconds, LOCAL_POLL_SECONDS), config.batch_max_wait)
    else:
        runner = BatchApiRunner.connect(endpoints.base_urls[0], endpoints.api_key, store, config.batch_poll_seconds,
                                        config.batch_max_wait)
    return BatchTeacher(runner, store, endpoints.model, config.api or "chat", config.max_attempts)
