"""`selfinstruct export`: rewrite a run directory's files from its store, whichever route made it.

Each route has its card (grow: `report.card`; convert and mix: their own), chosen by the route the store records,
so exporting a conversion again writes the card the conversion wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from .convert.card import convert_run_card
from .core.errors import InputError
from .core.store import ROUTE_KEY, STORE_NAME, Store
from .export.formats import resolve_formats, resolve_instances
from .export.run_dir import write_exports
from .mix.card import mix_run_card
from .report.card import grow_card


def card_for(route: str | None, system: str | None = None) -> Callable[[Path], str]:
    """The card renderer of a run directory made by `route` (None: a grow run)."""
    if route == "convert":
        return lambda run_dir: convert_run_card(run_dir, run_dir.resolve().name)
    if route == "mix":
        return lambda run_dir: mix_run_card(run_dir, run_dir.resolve().name)
    return lambda run_dir: grow_card(run_dir, system)


def export_run(run_dir: Path, formats: Iterable[str], val_fraction: float = 0.02, seed: int = 0,
               instances: str | int | None = None, system: str | None = None) -> list[Path]:
    """Export a run directory's store: `instances` per task ("all" by default, "first" or N)."""
    names = resolve_formats(formats)
    limit = resolve_instances(instances)
    if not (run_dir / STORE_NAME).is_file():
        raise InputError(str(run_dir), None, f"a run directory holding {STORE_NAME}", "no store there")
    with Store.open(run_dir) as store:
        rows = store.example_rows(limit)
        route = store.get_meta(ROUTE_KEY)
    return write_exports(run_dir, rows, names, card=card_for(route, system), val_fraction=val_fraction, seed=seed,
                         system=system)
