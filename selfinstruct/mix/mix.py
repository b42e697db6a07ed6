"""`mix_run`: sources -> dedup -> decontamination -> rates and quotas -> deterministic sample -> run directory.

Cleaning comes before sampling, so the quotas are met from clean rows and the card's counts add up:
rows available = taken + removed by dedup + removed by decontamination + not sampled.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..convert.output import write_run_dir
from .card import mix_run_card
from ..convert.readers import read_source
from ..export.formats import jsonl_text
from ..core.records import ExampleRow
from .clean import DECONTAMINATED, Removed, decontaminate, dedup_rows, eval_index
from .config import MixConfig
from .rates import quotas, rate, shares
from .sources import load_source

REMOVED_FILE = "removed.jsonl"


@dataclass
class SourceLine:
    """One row of the mixture table."""

    label: str
    path: str
    available: int
    dedup: int
    decontaminated: int
    rate: float
    weight: float | None
    target_share: float = 0.0
    taken: int = 0

    @property
    def clean(self) -> int:
        return self.available - self.dedup - self.decontaminated


@dataclass
class MixResult:
    out: Path
    rows: list[ExampleRow]
    lines: list[SourceLine]
    removed: list[Removed] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def actual_share(self, line: SourceLine) -> float:
        return line.taken / len(self.rows) if self.rows else 0.0

    def table_lines(self) -> list[str]:
        head = f"{'source':<24} {'available':>9} {'dedup':>6} {'decont':>6} {'rate':>9} {'target':>7} " \
               f"{'actual':>7} {'taken':>6}"
        body = [f"{line.label[:24]:<24} {line.available:>9} {line.dedup:>6} {line.decontaminated:>6} "
                f"{line.rate:>9.2f} {line.target_share:>7.1%} {self.actual_share(line):>7.1%} {line.taken:>6}"
                for line in self.lines]
        return [head, *body]


def _eval_texts(config: MixConfig) -> Iterator[tuple[str, str]]:
    for path in config.decontaminate.files:
        for row in read_source(str(path)).rows:
            yield " \n ".join(_strings(row)), path.name


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a row (nested lists and dicts too): eval text can sit in any field."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _order_key(seed: int, row: ExampleRow) -> bytes:
    return hashlib.blake2b(f"{seed}\0{row.group}\0{row.instruction}".encode(), digest_size=8).digest()


def _sample(config: MixConfig, clean: list[list[ExampleRow]], lines: list[SourceLine]) -> list[ExampleRow]:
    target_shares = shares([len(rows) for rows in clean], [line.weight for line in lines], config.cap,
                           config.temperature)
    counts = quotas([len(rows) for rows in clean], target_shares, config.target)
    taken: list[ExampleRow] = []
    for rows, line, share, count in zip(clean, lines, target_shares, counts):
        line.target_share, line.taken = share, count
        taken += sorted(rows, key=lambda row: _order_key(config.seed, row))[:count]
    return sorted(taken, key=lambda row: _order_key(config.seed + 1, row))


def mix_rows(config: MixConfig) -> tuple[list[ExampleRow], list[SourceLine], list[Removed]]:
    """The mix's rows, the mixture table and what was removed; nothing written."""
    loaded = [load_source(source) for source in config.source]
    kept, dup = dedup_rows([row for rows in loaded for row in rows], config.dedup)
    kept, dirty = decontaminate(kept, eval_index(_eval_texts(config), config.decontaminate))
    removed = dup + dirty
    by_source = Counter((item.row.provenance["mix_source"], item.reason == DECONTAMINATED) for item in removed)
    lines, clean = [], []
    for source, rows in zip(config.source, loaded):
        label = source.label
        mine = [row for row in kept if row.provenance["mix_source"] == label]
        clean.append(mine)
        lines.append(SourceLine(label, str(source.path), len(rows), by_source[(label, False)],
                                by_source[(label, True)], rate(len(mine), config.cap, config.temperature),
                                source.weight))
    return _sample(config, clean, lines), lines, removed


def mix_run(config: MixConfig, out: Path) -> MixResult:
    """Mix the sources into the run directory `out` (replacing an earlier mix there)."""
    rows, lines, removed = mix_rows(config)
    result = MixResult(out, rows, lines, removed)
    meta = {"mix": config.model_dump_json(), "mixture": json.dumps([vars(line) for line in lines])}
    files = write_run_dir(out, "mix", rows, [], meta, config.val_fraction, config.seed, mix_run_card,
                          extra={REMOVED_FILE: jsonl_text(item.as_json() for item in removed)})
    result.files = files
    return result
