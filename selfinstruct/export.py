"""Write what trainers read. Every file is written atomically: a reader sees the old or the new file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .store import Store

ALPACA_FILE = "alpaca_data.json"


def write_atomic(path: Path, text: str) -> None:
    """Temporary file in the same directory, fsync, rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_alpaca(store: Store, run_dir: Path) -> Path:
    """alpaca_data.json: a JSON list of {instruction, input, output}, like the original release."""
    records = [example.model_dump() for example in store.accepted_examples()]
    path = run_dir / ALPACA_FILE
    write_atomic(path, json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    return path
