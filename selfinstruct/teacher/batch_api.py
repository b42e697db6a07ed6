"""The OpenAI Batch API as a batch runner: upload the JSONL file, create the batch, poll it, download results.

Each step is recorded in the store as soon as it is done: the uploaded file's id, then the batch's id.
A run killed between creating the batch and recording its id finds it again by its input file
(`batches.list`), so the batch is never created twice. Control calls (upload, create, poll, download)
are retried by the SDK (bounded); a poll that fails is tried again at the next poll, until max_wait.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import openai

from ..core.errors import TeacherError
from ..core.store import BatchRecord, Store
from .batch_runner import FAILED, BatchResult, PollPacer
from .batch_files import COMPLETION_WINDOW, InputLine
from .retry import should_retry

log = logging.getLogger(__name__)

# Batch statuses after which nothing more happens (expired and cancelled batches keep their finished lines).
FINAL = frozenset({"completed", "expired", "cancelled", FAILED})
CONTROL_RETRIES = 5  # SDK retries of one control call: the only retry layer for them
LOOKBACK_SECONDS = 86400.0  # how far before our record a lost batch id is searched for


@dataclasses.dataclass
class BatchApiRunner:
    client: openai.AsyncOpenAI
    store: Store
    poll_seconds: float = 30.0
    max_wait: float = 26 * 3600.0
    name: str = "openai"
    exclusive: bool = False

    @classmethod
    def connect(cls, base_url: str, api_key: str, store: Store, poll_seconds: float, max_wait: float) -> BatchApiRunner:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=CONTROL_RETRIES)
        return cls(client, store, poll_seconds, max_wait)

    async def submit(self, batch: BatchRecord, lines: list[InputLine]) -> BatchRecord:
        data = b"".join(line.data for line in lines)
        uploaded = await self._call("uploading a batch file", self.client.files.create(
            file=(f"selfinstruct-{batch.id}.jsonl", data, "application/jsonl"), purpose="batch"))
        self.store.update_batch(batch.id, input_file_id=uploaded.id)
        return await self._create(dataclasses.replace(batch, input_file_id=uploaded.id))

    async def resume(self, batch: BatchRecord) -> BatchRecord | None:
        if batch.remote_id is not None:
            return batch
        if batch.input_file_id is None:
            return None  # killed before the upload was recorded: no batch can use the file
        found = await self._find(batch)
        if found is not None:
            self.store.update_batch(batch.id, remote_id=found, status="submitted")
            return dataclasses.replace(batch, remote_id=found, status="submitted")
        return await self._create(batch)

    async def wait(self, batch: BatchRecord) -> BatchResult:
        pacer = PollPacer(self.poll_seconds, self.max_wait, f"batch {batch.remote_id}")
        while True:
            remote = await self._poll(batch)
            if remote is not None and remote.status in FINAL:
                return await self._result(remote)
            await pacer.sleep()

    async def close(self) -> None:
        await self.client.close()

    async def _create(self, batch: BatchRecord) -> BatchRecord:
        assert batch.input_file_id is not None
        created = await self._call("creating a batch", self.client.batches.create(
            input_file_id=batch.input_file_id, endpoint=batch.endpoint,  # type: ignore[arg-type]
            completion_window=COMPLETION_WINDOW, metadata={"selfinstruct_batch": batch.id}))
        self.store.update_batch(batch.id, remote_id=created.id, status="submitted")
        log.info("batch %s submitted as %s", batch.id, created.id)
        return dataclasses.replace(batch, remote_id=created.id, status="submitted")

    async def _find(self, batch: BatchRecord) -> str | None:
        """The id of the batch created from our input file, if the Batch API has one (newest first)."""
        async def scan() -> str | None:
            async for remote in self.client.batches.list(limit=100):
                if remote.input_file_id == batch.input_file_id:
                    return remote.id
                if remote.created_at < batch.created - LOOKBACK_SECONDS:
                    return None
            return None
        return await self._call("listing batches", scan())

    async def _poll(self, batch: BatchRecord) -> Any:
        assert batch.remote_id is not None
        try:
            remote = await self.client.batches.retrieve(batch.remote_id)
        except openai.OpenAIError as err:
            if not should_retry(err):
                raise TeacherError(f"polling batch {batch.remote_id} failed: {_short(err)}") from None
            log.warning("polling batch %s failed (%s); trying again at the next poll", batch.remote_id, _short(err))
            return None
        counts = remote.request_counts
        log.info("batch %s: %s%s", remote.id, remote.status,
                 f", {counts.completed + counts.failed} of {counts.total} requests done" if counts else "")
        return remote

    async def _result(self, remote: Any) -> BatchResult:
        if remote.status == FAILED:
            errors = remote.errors.data if remote.errors and remote.errors.data else []
            detail = "; ".join(f"{error.code}: {error.message}" + (f" (line {error.line})" if error.line else "")
                               for error in errors[:3])
            return BatchResult(FAILED, message=detail or "no reason given")
        output = await self._download(remote.output_file_id)
        errors = await self._download(remote.error_file_id)
        return BatchResult(remote.status, output, errors)

    async def _download(self, file_id: str | None) -> bytes:
        if not file_id:
            return b""
        content = await self._call(f"downloading batch file {file_id}", self.client.files.content(file_id))
        return content.content

    @staticmethod
    async def _call(what: str, call: Any) -> Any:
        try:
            return await call
        except openai.OpenAIError as err:
            raise TeacherError(f"{what} failed: {_short(err)}") from None


def _short(error: openai.OpenAIError) -> str:
    # Name the status and the server's message, never the request headers (they hold the key).
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {error.message[:200]}"
    return type(error).__name__
