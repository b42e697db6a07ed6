"""Write a run directory from ExampleRows: the store's converted rows, every export format, provenance, card.

A conversion or a mix is built in a temporary directory beside `out` and renamed into place only when every
file is written, so a failure leaves `out` as it was (nothing written, nothing half-written).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..core.atomic import write_atomic
from ..core.errors import InputError
from ..export.formats import FORMATS
from ..export.run_dir import write_exports
from ..core.records import ExampleRow
from ..core.store import ROUTE_KEY, STORE_NAME, SkippedRow, Store


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
                  val_fraction: float, seed: int, card: Callable[[Path, str], str],
                  extra: dict[str, str] | None = None) -> list[Path]:
    """Build the run directory beside `out`, then swap it in; returns the files written (under `out`).

    `card(run_dir, title)` renders the route's README.md from the store and the files written.
    """
    _replaceable(out, route)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    try:
        building.mkdir()
        with Store.open(building) as store:
            store.add_converted(rows, skipped, {**meta, ROUTE_KEY: route})
        # Extra files first: the card, written last by write_exports, describes what is in the directory.
        written = [write_atomic(building / name, text) for name, text in (extra or {}).items()]
        written += write_exports(building, rows, FORMATS, card=lambda run_dir: card(run_dir, out.name),
                                 val_fraction=val_fraction, seed=seed)
        _swap(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return [out / path.name for path in written]


def _swap(building: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    building.rename(out)
    shutil.rmtree(old, ignore_errors=True)
