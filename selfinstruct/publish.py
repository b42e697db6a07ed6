"""`selfinstruct export`: rewrite a run directory's files from its store, whichever route made it.

Each route has its card (grow: `report.card`; convert and mix: their own), chosen by the route the store records,
so exporting a conversion again writes the card the conversion wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import ValidationError

from .convert.card import convert_run_card
from .core.errors import ConfigError, InputError
from .core.store import ROUTE_KEY, STORE_NAME, Store
from .export.formats import resolve_formats, resolve_instances
from .export.run_dir import write_exports
from .judge.scores import ScoreFilter, Selection, exported_rows, record_filter
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
               instances: str | int | None = None, system: str | None = None, min_score: int | None = None,
               keep_unjudged: bool = False, on_selection: Callable[[Selection], None] | None = None) -> list[Path]:
    """Export a run directory's store: `instances` per task ("all" by default, "first" or N).

    With `min_score`, only rows the last judge scored at least that (unjudged rows too with `keep_unjudged`);
    the selection is recorded for the run's later writers, and an export without `min_score` forgets it.
    """
    names = resolve_formats(formats)
    limit = resolve_instances(instances)
    if min_score is None and keep_unjudged:
        raise ConfigError("--keep-unjudged", None, "--min-score N beside it (it says what a score filter does "
                                                   "with unjudged rows)", "no --min-score")
    rule = None if min_score is None else _score_filter(min_score, keep_unjudged)
    if not (run_dir / STORE_NAME).is_file():
        raise InputError(str(run_dir), None, f"a run directory holding {STORE_NAME}", "no store there")
    with Store.open(run_dir) as store:
        rows, selection = exported_rows(store, limit, rule, recorded=False)  # this export's filter, or none
        record_filter(store, rule)
        route = store.get_meta(ROUTE_KEY)
    if selection is not None and on_selection is not None:
        on_selection(selection)
    return write_exports(run_dir, rows, names, card=card_for(route, system), val_fraction=val_fraction, seed=seed,
                         system=system)


def _score_filter(min_score: int, keep_unjudged: bool) -> ScoreFilter:
    try:
        return ScoreFilter(min_score=min_score, keep_unjudged=keep_unjudged)
    except ValidationError:
        raise ConfigError("--min-score", None, "a score from 1 to 5", str(min_score)) from None
