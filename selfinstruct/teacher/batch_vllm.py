"""`vllm run-batch` on a local model as a batch runner: one process per batch, files in the run directory.

The batch is recorded as submitted before its process starts. The process runs in its own session and
outlives the grow that started it, as a Batch API batch outlives its client: a grow killed mid-batch,
and run again, waits for the same process and reads its output instead of running the requests again.
run-batch writes its output file once all its requests are done; a process that died without one (a
reboot, an OOM kill) leaves its requests unanswered, and they go into the next batch. One batch runs at
a time (`exclusive`): a local model fills the machine.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from ..core.atomic import write_atomic
from ..core.config import VllmOptions
from ..core.errors import TeacherUnavailable
from ..core.store import BatchRecord, Store
from .batch_runner import BatchResult, PollPacer
from .batch_files import InputLine
from .server import _tail
from .vllm import engine_args

log = logging.getLogger(__name__)

RUN_BATCH_MODULE = "vllm.entrypoints.openai.run_batch"
LOCAL_POLL_SECONDS = 1.0  # checking a local process costs nothing; a batch ends within a second of it
PID_PREFIX = "pid:"
COMPLETED = "completed"
INCOMPLETE = "incomplete"  # the process ended without writing every line


def run_batch_command(model: str, options: VllmOptions) -> list[str]:
    """argv of `vllm run-batch` without its files: vllm.python, else this Python with vLLM, else `vllm`."""
    python = options.python or (sys.executable if importlib.util.find_spec("vllm") else None)
    if python:
        prefix = [python, "-m", RUN_BATCH_MODULE]
    elif executable := shutil.which("vllm"):
        prefix = [executable, "run-batch"]
    else:
        raise TeacherUnavailable("batch mode on the vllm backend runs vllm run-batch: pip install 'selfinstruct[vllm]'"
                                 ", or set vllm.python to a Python that has vLLM")
    return [*prefix, "--model", model, *engine_args(options)]


@dataclasses.dataclass
class RunBatchRunner:
    store: Store
    run_dir: Path
    command: list[str]
    poll_seconds: float = LOCAL_POLL_SECONDS
    max_wait: float = 26 * 3600.0
    name: str = "vllm"
    exclusive: bool = True

    def __post_init__(self) -> None:
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def paths(self, batch_id: str) -> tuple[Path, Path, Path]:
        """The batch's input file, output file and log."""
        folder = self.run_dir / "batches"
        return (folder / f"{batch_id}.input.jsonl", folder / f"{batch_id}.output.jsonl",
                self.run_dir / "logs" / f"vllm_run_batch_{batch_id}.log")

    async def submit(self, batch: BatchRecord, lines: list[InputLine]) -> BatchRecord:
        input_path, output_path, log_path = self.paths(batch.id)
        write_atomic(input_path, b"".join(line.data for line in lines))
        # Recorded before it starts: a run killed right after finds the process by its output path.
        self.store.update_batch(batch.id, status="submitted")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as process_log:
            process = subprocess.Popen(
                [*self.command, "-i", str(input_path), "-o", str(output_path)],
                stdout=process_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self._processes[batch.id] = process
        self.store.update_batch(batch.id, remote_id=f"{PID_PREFIX}{process.pid}")
        log.info("vllm run-batch for batch %s started: pid %d, %d requests, log %s", batch.id, process.pid,
                 len(lines), log_path)
        return dataclasses.replace(batch, status="submitted", remote_id=f"{PID_PREFIX}{process.pid}")

    async def resume(self, batch: BatchRecord) -> BatchRecord | None:
        return None if batch.status == "prepared" else batch

    async def wait(self, batch: BatchRecord) -> BatchResult:
        _, output_path, log_path = self.paths(batch.id)
        pacer = PollPacer(self.poll_seconds, self.max_wait, f"vllm run-batch {batch.id}", ceiling=self.poll_seconds)
        while self._running(batch.id, output_path):
            await pacer.sleep()
        output = output_path.read_bytes() if output_path.exists() else b""
        process = self._processes.pop(batch.id, None)
        if process is not None and process.returncode != 0 and not output:
            self.store.collect_batch(batch.id, "failed", [])
            raise TeacherUnavailable(f"vllm run-batch exited with code {process.returncode} without results; last "
                                     f"lines of {log_path}:\n{_tail(log_path)}")
        lines = sum(1 for line in output.splitlines() if line.strip())
        wanted = len(self.store.batch_requests(batch.id))
        return BatchResult(COMPLETED if lines >= wanted else INCOMPLETE, output)

    async def close(self) -> None:
        for batch_id, process in self._processes.items():
            if process.poll() is None:
                log.warning("vllm run-batch for batch %s keeps running (pid %d); the next grow of this run "
                            "directory collects its results", batch_id, process.pid)

    def _running(self, batch_id: str, output_path: Path) -> bool:
        process = self._processes.get(batch_id)
        if process is not None:
            return process.poll() is None
        return bool(processes_with_argument(str(output_path)))


def processes_with_argument(argument: str) -> list[int]:
    """Live processes (not zombies) with `argument` on their command line: an earlier run's run-batch."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if argument.encode() not in (entry / "cmdline").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found

