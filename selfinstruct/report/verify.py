"""Check that a run directory is sound: store, export, counts, dedup, provenance.

`verify_run` reports problems as readable lines and never raises for a damaged
run: a truncated SQLite file or a hand-edited export is a finding, not a crash.
It holds the run lock shared, so it never reads a half-written round (a grow
commits the store, then rewrites the export) and a grow cannot start meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ..core.config import GrowConfig, stored_settings
from ..core.errors import InputError, StoreError, StoreLocked
from ..export.formats import ALPACA_FILE
from ..filters.rouge import RougeIndex
from ..core.lock import RunLock
from ..core.records import TASK_PROVENANCE_KEYS, AlpacaExample
from ..core.store import STORE_NAME, Store
from ..judge.scores import exported_rows

_SHOWN = 60  # characters of an instruction quoted in a problem
SQLITE_HEADER = b"SQLite format 3\x00"

# What reading a damaged run can raise: SQLite errors, ours, and JSON or validation errors (ValueError).
_READ_ERRORS = (sqlite3.Error, StoreError, InputError, ValueError, TypeError)


def verify_run(run_dir: Path) -> list[str]:
    """Readable problems found in `run_dir`; an empty list means the run is sound.

    Raises `StoreLocked` only when a grow is running there: its store and export are not comparable then.
    """
    if not (run_dir / STORE_NAME).is_file():
        return [f"{run_dir}: no {STORE_NAME}: not a run directory"]
    lock = RunLock(run_dir, shared=True)
    try:
        lock.acquire()
    except StoreLocked:
        raise
    except OSError:
        pass  # a read-only copy of a run: nobody can be writing to it, so check it unlocked
    try:
        return _verify_store(run_dir)
    finally:
        lock.release()


def _verify_store(run_dir: Path) -> list[str]:
    header = _read_header(run_dir / STORE_NAME)
    if header != SQLITE_HEADER:
        # SQLite would take an empty file for a new database and write a fresh schema into it.
        shown = "an empty file" if not header else "not an SQLite database"
        return [f"{run_dir / STORE_NAME}: cannot open the store: {shown}"]
    try:
        store = Store.open(run_dir)
    except StoreError as err:
        return [_reason(err)]  # already "cannot open the store PATH: why"
    with store:
        try:
            integrity = store.integrity_problems()
        except _READ_ERRORS as err:
            return [f"{store.path}: cannot read the store: {_reason(err)}"]
        if integrity:
            return [f"SQLite integrity: {line}" for line in integrity]
        config, problems = _stored_config(store)
        checks: list[tuple[str, Callable[[], list[str]]]] = [
            ("the export", lambda: _check_export(run_dir, [row.alpaca() for row in exported_rows(store)[0]])),
            ("the accepted tasks", lambda: _check_tasks(store, config)),
            ("the rounds", lambda: _check_rounds(store)),
            ("near-duplicates", lambda: _check_rouge(
                store.instructions("seed"), store.instructions("generated"),
                config.filters.rouge_threshold if config else 0.7,
            )),
        ]
        for what, check in checks:
            try:
                problems += check()
            except _READ_ERRORS as err:
                problems.append(f"cannot check {what}: {_reason(err)}")
    return problems


def _read_header(path: Path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(len(SQLITE_HEADER))


def _stored_config(store: Store) -> tuple[GrowConfig | None, list[str]]:
    """The last configuration that committed rounds, with its target raised to the largest any of them had.

    The largest target is the bound the data was grown under: a grow stops starting rounds at its own
    target, so no recorded configuration could have accepted more than the largest one asked for.
    """
    try:
        history = store.config_history()
        if not history:
            return None, []
        configs = [GrowConfig.model_validate(stored_settings(entry.config)) for entry in history]
        return configs[-1].model_copy(update={"target": max(config.target for config in configs)}), []
    except _READ_ERRORS as err:
        return None, [f"the run's stored config is unreadable: {_reason(err)}"]


def _check_export(run_dir: Path, stored: list[AlpacaExample]) -> list[str]:
    path = run_dir / ALPACA_FILE
    if not path.is_file():
        return [] if not stored else [f"{path} is missing; `selfinstruct export --format alpaca` rewrites it"]
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(items, list):
            raise ValueError(f"a JSON {type(items).__name__}, not a list")
        exported = [AlpacaExample.model_validate(item) for item in items]
    except (ValueError, TypeError) as err:
        return [f"{path} is not a valid Alpaca JSON list: {_reason(err)}"]
    if exported == stored:
        return []
    if exported == stored[:len(exported)]:
        # A run stopped between committing a round and rewriting the export: stale, not corrupt.
        return [f"{path} holds only the first {len(exported)} of the store's {len(stored)} examples (stale: "
                f"rewrite it with `selfinstruct export --format alpaca`, or grow again)"]
    index = next((i for i, (a, b) in enumerate(zip(exported, stored)) if a != b), min(len(exported), len(stored)))
    where = (f"example {index} differs ({_quote(exported[index].instruction)} in the file)"
             if index < min(len(exported), len(stored)) else f"it holds {len(exported)}")
    return [f"{path} does not match the store: {where}; the store has {len(stored)} examples"]


def _check_tasks(store: Store, config: GrowConfig | None) -> list[str]:
    problems = []
    tasks = store.generated_tasks()
    if config and len(tasks) > config.target:
        problems.append(f"{len(tasks)} accepted examples, more than the largest target {config.target} "
                        f"of the configurations that grew this run")
    for text, instances, provenance in tasks:
        if instances == 0:
            problems.append(f"accepted task without instances: {_quote(text)}")
        if not isinstance(provenance, dict):
            problems.append(f"provenance of {_quote(text)} is not a JSON object")
            continue
        missing = [key for key in TASK_PROVENANCE_KEYS if key not in provenance]
        if missing:
            problems.append(f"provenance of {_quote(text)} lacks {', '.join(missing)}")
    return problems


def _check_rounds(store: Store) -> list[str]:
    """Rounds are numbered 1..n without gaps, and every accepted task belongs to one of them."""
    last = store.next_round() - 1
    problems = []
    if store.count("rounds") != last:
        problems.append(f"round numbers have gaps: {store.count('rounds')} rounds recorded, the last is {last}")
    orphans = [record for record in store.generated_records() if not 1 <= int(record["round"]) <= last]
    if orphans:
        problems.append(f"{len(orphans)} accepted task(s) from a round that was never committed, "
                        f"e.g. {_quote(str(orphans[0]['instruction']))}")
    return problems


def _check_rouge(seeds: list[str], generated: list[str], threshold: float) -> list[str]:
    """Each accepted instruction against the seeds and every instruction accepted before it."""
    index = RougeIndex(threshold=threshold)
    for text in seeds:
        index.add(text)
    problems = []
    for text in generated:
        match = index.check(text)
        if index.is_duplicate(match):
            problems.append(f"ROUGE-L {match.score:.3f} > {threshold} between {_quote(text)} "
                            f"and {_quote(str(match.nearest))}")
        index.add(text)
    return problems


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…")


def _reason(err: BaseException) -> str:
    # The first line only: pydantic and SQLite messages run long, and the list must stay readable.
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
