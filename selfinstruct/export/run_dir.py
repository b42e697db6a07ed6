"""A run directory's files from its rows: the chosen formats, dataset_info.json, provenance.jsonl, the card."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..core.atomic import write_atomic
from ..core.errors import ConfigError
from ..core.records import ExampleRow
from .formats import CARD_FILE, PROVENANCE_FILE, jsonl_text, provenance_rows, resolve_formats, write_format
from .trainer_files import write_dataset_info


def write_exports(run_dir: Path, rows: list[ExampleRow], formats: Iterable[str], *, card: Callable[[Path], str],
                  val_fraction: float = 0.02, seed: int = 0, system: str | None = None) -> list[Path]:
    """The chosen formats, dataset_info.json, provenance.jsonl, then README.md: `card(run_dir)`, rendered once
    the files it describes are written (each route has its card: `selfinstruct.publish.card_for`)."""
    names = resolve_formats(formats)
    if not 0 <= val_fraction < 1:
        raise ConfigError("--val-fraction", None, "a fraction in [0, 1)", str(val_fraction))
    if system is not None and not system.strip():
        raise ConfigError("--system", None, "a non-empty system prompt, or no --system", repr(system))
    written = [path for name in names for path in write_format(name, rows, run_dir, val_fraction, seed, system)]
    written += write_dataset_info(run_dir)
    written.append(write_atomic(run_dir / PROVENANCE_FILE, jsonl_text(provenance_rows(rows))))
    return [*written, write_atomic(run_dir / CARD_FILE, card(run_dir))]
