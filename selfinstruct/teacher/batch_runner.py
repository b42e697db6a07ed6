"""What a batch runner is (the Batch API, vllm run-batch) and what it hands back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from ..core.errors import TeacherError
from ..core.store import BatchRecord
from .batch_files import InputLine

MAX_POLL_SECONDS = 600.0
POLL_GROWTH = 1.5
FAILED = "failed"  # a batch's outcome when none of its lines ran


@dataclass(frozen=True)
class BatchResult:
    """A finished batch: its final status and the contents of its output and error files."""

    status: str
    output: bytes = b""
    errors: bytes = b""
    message: str = ""  # why the batch failed, when it did


class BatchWaitExceeded(TeacherError):
    """A submitted batch did not finish within batch_max_wait; it stays recorded for the next run."""


class BatchRunner(Protocol):
    """Runs recorded batches: the Batch API or vllm run-batch."""

    name: str  # recorded with each batch, so a resumed run hands it back to the same kind of runner
    exclusive: bool  # one batch at a time: a local model fills the machine

    async def submit(self, batch: BatchRecord, lines: list[InputLine]) -> BatchRecord:
        """Hand a recorded batch over, recording in the store what a later run needs to find it."""
        ...

    async def resume(self, batch: BatchRecord) -> BatchRecord | None:
        """An open batch of an earlier run, ready to wait on; None if it was never handed over."""
        ...

    async def wait(self, batch: BatchRecord) -> BatchResult:
        """Poll until the batch is done; BatchWaitExceeded past the runner's max wait."""
        ...

    async def close(self) -> None: ...


class PollPacer:
    """Waits between polls: `first` seconds, growing by POLL_GROWTH up to `ceiling`, until `max_wait`."""

    def __init__(self, first: float, max_wait: float, what: str, ceiling: float = MAX_POLL_SECONDS) -> None:
        self.interval = first
        self.ceiling = max(first, ceiling)
        self.deadline = time.monotonic() + max_wait
        self.max_wait = max_wait
        self.what = what

    async def sleep(self) -> None:
        if time.monotonic() >= self.deadline:
            raise BatchWaitExceeded(
                f"{self.what} did not finish within {self.max_wait:.0f} s (batch_max_wait); it stays recorded "
                f"in the store: run again to keep polling it instead of paying for its requests again")
        await asyncio.sleep(min(self.interval, max(0.0, self.deadline - time.monotonic())))
        self.interval = min(self.interval * POLL_GROWTH, self.ceiling)
