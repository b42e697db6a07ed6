"""Write a run directory from ExampleRows: the store's converted rows, every export format, provenance, card.

A conversion or a mix is built in a temporary directory beside `out` and renamed into place only when every
file is written, so a failure leaves `out` as it was (nothing written, nothing half-written).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..export import (ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, PROVENANCE_FILE, TEXT_FILE, TRAIN_FILE,
                      VALIDATION_FILE, jsonl_text, parquet_bytes, to_messages, to_text, write_atomic,
                      write_atomic_bytes)
from ..records import AlpacaExample, ExampleRow
from ..store import STORE_NAME, SkippedRow, Store
from .readers import is_eval_split

CARD_FILE = "README.md"
ROUTE_KEY = "route"  # meta key: "convert" or "mix"


def split_rows(rows: list[ExampleRow], val_fraction: float, seed: int = 0) -> tuple[list[ExampleRow], list[ExampleRow]]:
    """(train, validation). A row whose source fixed its split keeps it (eval splits go to validation, never to
    train); the others go by group, the ceil(groups · fraction) groups with the lowest sha256(seed, group) held
    out, so one source example's rows never straddle the split and the split does not depend on row order."""
    free = sorted({row.group for row in rows if row.split is None})
    count = min(math.ceil(len(free) * val_fraction), max(len(free) - 1, 0))
    held = set(sorted(free, key=lambda group: hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest())[:count])
    train, validation = [], []
    for row in rows:
        goes_to_validation = is_eval_split(row.split) if row.split is not None else row.group in held
        (validation if goes_to_validation else train).append(row)
    return train, validation


def _alpaca(rows: list[ExampleRow]) -> list[AlpacaExample]:
    return [AlpacaExample(instruction=row.instruction, input=row.input, output=row.output) for row in rows]


def write_exports(run_dir: Path, rows: list[ExampleRow], val_fraction: float = 0.02, seed: int = 0) -> list[Path]:
    """Every export format and provenance.jsonl, from rows."""
    examples = _alpaca(rows)
    plain = [example.model_dump() for example in examples]
    write_atomic(run_dir / ALPACA_FILE, json.dumps(plain, ensure_ascii=False, indent=2) + "\n")
    write_atomic(run_dir / JSONL_FILE, jsonl_text(plain))
    write_atomic(run_dir / MESSAGES_FILE, jsonl_text(to_messages(example) for example in examples))
    write_atomic(run_dir / TEXT_FILE, jsonl_text({"text": to_text(example)} for example in examples))
    train, validation = split_rows(rows, val_fraction, seed)
    write_atomic_bytes(run_dir / TRAIN_FILE, parquet_bytes(_alpaca(train)))
    write_atomic_bytes(run_dir / VALIDATION_FILE, parquet_bytes(_alpaca(validation)))
    provenance = ({"index": n, "instruction": row.instruction, "group": row.group, "split": row.split,
                   **row.provenance} for n, row in enumerate(rows))
    write_atomic(run_dir / PROVENANCE_FILE, jsonl_text(provenance))
    return [run_dir / name for name in (ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, TEXT_FILE, TRAIN_FILE,
                                        VALIDATION_FILE, PROVENANCE_FILE)]


def _replaceable(out: Path, route: str) -> None:
    """`out` may be new, empty, or an earlier run of the same route (which is replaced)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not (out / STORE_NAME).is_file():
        raise InputError(str(out), "--out", f"a new or empty directory, or an earlier {route} run", "other files")
    with Store.open(out) as store:
        if store.get_meta(ROUTE_KEY) != route:
            raise InputError(str(out), "--out", f"a new directory or an earlier {route} run (not a grow run)",
                             f"a run directory of {store.get_meta(ROUTE_KEY) or 'grow'}")


def write_run_dir(out: Path, route: str, rows: list[ExampleRow], skipped: list[SkippedRow], meta: dict[str, str],
                  card: Callable[[Path], str], val_fraction: float, seed: int,
                  extra: dict[str, str] | None = None) -> list[Path]:
    """Build the run directory beside `out`, then swap it in; returns the files written (under `out`)."""
    _replaceable(out, route)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    try:
        building.mkdir()
        with Store.open(building) as store:
            store.add_converted(rows, skipped, {**meta, ROUTE_KEY: route})
        written = write_exports(building, rows, val_fraction, seed)
        for name, text in (extra or {}).items():
            write_atomic(building / name, text)
            written.append(building / name)
        write_atomic(building / CARD_FILE, card(building))
        _readable(building)
        _swap(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return [out / path.name for path in [*written, building / CARD_FILE]]


def _readable(run_dir: Path) -> None:
    # mkstemp creates 0600 files; a trainer running as another user must read these (0644 under umask 022).
    umask = os.umask(0)
    os.umask(umask)
    for path in run_dir.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _swap(building: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    building.rename(out)
    shutil.rmtree(old, ignore_errors=True)
