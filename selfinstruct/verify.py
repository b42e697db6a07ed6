"""Check that a run directory is sound: store, export, counts, dedup, provenance."""

from __future__ import annotations

import json
from pathlib import Path

from .config import GrowConfig
from .export import ALPACA_FILE
from .filters.rouge import RougeIndex
from .records import AlpacaExample
from .store import STORE_NAME, Store

PROVENANCE_KEYS = ("teacher", "method", "round", "demo_ids", "prompt_hash", "is_classification")


def verify_run(run_dir: Path) -> list[str]:
    """Readable problems found in `run_dir`; an empty list means the run is sound."""
    if not (run_dir / STORE_NAME).is_file():
        return [f"{run_dir}: no {STORE_NAME}: not a run directory"]
    with Store.open(run_dir) as store:
        problems = store.integrity_problems()
        if problems:
            return [f"SQLite integrity: {line}" for line in problems]
        config_json = store.get_meta("config")
        config = GrowConfig.model_validate_json(config_json) if config_json else None
        problems += _check_export(run_dir, store.accepted_examples())
        problems += _check_tasks(store, config)
        threshold = config.filters.rouge_threshold if config else 0.7
        problems += _check_rouge(store.instructions("seed"), store.instructions("generated"), threshold)
    return problems


def _check_export(run_dir: Path, stored: list[AlpacaExample]) -> list[str]:
    path = run_dir / ALPACA_FILE
    if not path.is_file():
        return [f"{path} is missing"]
    try:
        exported = [AlpacaExample.model_validate(item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as err:
        return [f"{path} is not a valid Alpaca JSON list: {err}"]
    if exported != stored:
        return [f"{path} holds {len(exported)} examples that differ from the store's {len(stored)}"]
    return []


def _check_tasks(store: Store, config: GrowConfig | None) -> list[str]:
    problems = []
    tasks = store.generated_tasks()
    if config and len(tasks) > config.target:
        problems.append(f"{len(tasks)} accepted examples, more than the target {config.target}")
    for text, instances, provenance in tasks:
        if instances == 0:
            problems.append(f"accepted task without instances: {text[:80]!r}")
        missing = [key for key in PROVENANCE_KEYS if key not in provenance]
        if missing:
            problems.append(f"provenance of {text[:80]!r} lacks {', '.join(missing)}")
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
            problems.append(f"ROUGE-L {match.score:.3f} > {threshold} between {text[:60]!r} and {match.nearest!r}")
        index.add(text)
    return problems
