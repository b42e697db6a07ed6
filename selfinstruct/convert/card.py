"""Dataset cards of converted and mixed run directories (README.md, the Hub's YAML header + prose), rendered from
the store alone, so `selfinstruct export` rewrites the same card a conversion or a mix wrote."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .. import __version__
from ..export.formats import (
    ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, PROVENANCE_FILE, TEXT_FILE, TRAIN_FILE, VALIDATION_FILE, split_rows,
)
from ..core.records import ExampleRow
from ..core.store import Store

FILES = {
    ALPACA_FILE: "JSON list of `{instruction, input, output}` (the Alpaca shape)",
    JSONL_FILE: "the same rows as JSON Lines",
    MESSAGES_FILE: "chat format: `{\"messages\": [user, assistant]}` (TRL `SFTTrainer`)",
    TEXT_FILE: "`{\"text\": ...}` rendered in the Alpaca training prompt",
    TRAIN_FILE: "train split (parquet)",
    VALIDATION_FILE: "validation split (parquet): the sources' own eval rows and a hash-chosen share of groups",
    PROVENANCE_FILE: "per row: route, source file and row, family, template id (convert) or source (mix)",
    "removed.jsonl": "rows a mix left out: dedup (with the earlier row) and decontamination (with the n-gram)",
}


def front_matter(tags: list[str], count: int) -> list[str]:
    size = next((label for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                                            (1_000_000, "100K<n<1M")) if count < limit), "n>1M")
    return ["---", "license: other  # the source data's licence applies: see Licence", "language:", "- en",
            "task_categories:", "- text-generation", "tags:", *(f"- {tag}" for tag in tags),
            "size_categories:", f"- {size}", "configs:", "- config_name: default", "  data_files:",
            "  - split: train", f"    path: {TRAIN_FILE}", "  - split: validation", f"    path: {VALIDATION_FILE}",
            "---"]


def loading(run_dir: Path) -> list[str]:
    present = [name for name in FILES if (run_dir / name).is_file()]
    return ["## Files and loading", "", "| file | contents |", "|---|---|",
            *(f"| `{name}` | {FILES[name]} |" for name in present), "", "```python",
            "from datasets import load_dataset", "",
            f'ds = load_dataset("json", data_files="{ALPACA_FILE}", split="train")',
            f'ds = load_dataset("parquet", data_files={{"train": "{TRAIN_FILE}", "validation": "{VALIDATION_FILE}"}})',
            "```"]


def split_line(rows: list[ExampleRow], val_fraction: float, seed: int) -> str:
    train, validation = split_rows(rows, val_fraction, seed)
    fixed = Counter(row.split for row in rows if row.split)
    shown = ", ".join(f"{name} {count}" for name, count in sorted(fixed.items())) or "none"
    return (f"Splits: {len(train)} train, {len(validation)} validation (rows with a split fixed by their source: "
            f"{shown}; the others by a hash of their group, validation share {val_fraction:g}).")


def skipped_table(skipped: dict[str, int]) -> list[str]:
    rows = [f"| `{reason}` | {count} |" for reason, count in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))]
    return ["| skipped because | rows |", "|---|---:|", *(rows or ["| (none) | 0 |"])]


def convert_card(run_dir: Path, title: str, meta: dict[str, Any], rows: list[ExampleRow],
                 skipped: dict[str, int]) -> str:
    """The card of a conversion; `meta` is what `convert_dataset` stored (config, family, templates, source)."""
    config, family, templates = meta["convert"], meta.get("family") or None, meta["templates"]
    used = Counter(str(row.provenance.get("template")) for row in rows)
    template_rows = [f"| `{t['id']}` | {'yes' if t['inverted'] else ''} | {'yes' if t['options'] else ''} | "
                     f"{used.get(t['id'], 0)} |" for t in templates]
    source, seed = meta["source"], config["seed"]
    lines = [
        *front_matter(["instruction-tuning", "templated", family or "user-templates"], len(rows)), "",
        f"# {title}", "",
        f"{len(rows)} instruction rows made from the labelled data `{source}` through templates "
        f"({family or 'user templates'}: {meta.get('task') or 'no task named'}), by selfinstruct {__version__}.", "",
        "## How it was made", "",
        f"- Templates: {len(templates)} from `{meta['templates_file']}`, {len(used)} used; one per row, chosen by "
        f"a hash of the row's fields and seed {seed}, so a re-run gives the same rows",
        f"- Few-shot exemplars per row: {config['shots']}",
        f"- {split_line(rows, config['val_fraction'], seed)}", "",
        "## Templates used", "", "| template | inverted | lists options | rows |", "|---|---|---|---:|",
        *template_rows, "", "## Rows left out", "", *skipped_table(skipped), "",
        "## Licence", "", f"Every row restates a row of `{source}`: that data set's licence and attribution apply "
        "to this one. Set the `license` field above to it.", "", *loading(run_dir), "",
    ]
    return "\n".join(lines)


def stored_meta(get: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """Meta values the card needs, JSON-decoded where they are JSON."""
    out: dict[str, Any] = {}
    for key in keys:
        value = get(key)
        try:
            out[key] = json.loads(value) if value is not None else None
        except json.JSONDecodeError:
            out[key] = value
    return out


ROUTE_META = ("convert", "family", "task", "source", "templates_file", "templates", "mix", "mixture")


def stored_route(run_dir: Path) -> tuple[dict[str, Any], list[ExampleRow], dict[str, int]]:
    """What a route's card is rendered from: the stored meta, the converted rows, the skipped rows by reason."""
    with Store.open(run_dir) as store:
        meta = stored_meta(store.get_meta, ROUTE_META)
        return meta, store.converted_rows(), store.skipped_counts()


def convert_run_card(run_dir: Path, title: str) -> str:
    """README.md of a conversion's run directory, from its store."""
    meta, rows, skipped = stored_route(run_dir)
    return convert_card(run_dir, title, meta, rows, skipped)
