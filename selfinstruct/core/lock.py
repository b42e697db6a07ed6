"""One writer per run directory at a time; readers (verify) only while no writer runs.

An fcntl `flock` is released by the kernel when its holder dies, even by SIGKILL,
so a lock left behind by a killed run is taken over safely by the next one: there
is no stale-lock file to clean up and no PID to guess about. The PID written into
the file is only for the message shown to whoever is refused.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import StoreLocked

LOCK_NAME = ".lock"
_PID_BYTES = 32


class RunLock:
    """`flock` on DIR/.lock: exclusive for a grow, shared for readers that need a quiet store.

    Never blocks: a refused caller gets `StoreLocked` at once, naming the holder when it is a writer.
    """

    def __init__(self, run_dir: Path, shared: bool = False):
        self.path = run_dir / LOCK_NAME
        self.shared = shared
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        if not self.shared:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # os.open gives a non-inheritable descriptor (PEP 446): a teacher server we start cannot keep the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, _PID_BYTES, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process (a grow, or a verify)"
            advice = "wait for it to finish" + ("" if self.shared else " or use another --out")
            raise StoreLocked(f"{self.path.parent} is in use by {who}; {advice}") from None
        except BaseException:
            os.close(fd)
            raise
        if not self.shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        if not self.shared:
            # Forget our PID: the file of a run that finished (or was refused, e.g. for other seeds) stays empty,
            # so a refused run leaves a finished run directory byte-identical.
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
