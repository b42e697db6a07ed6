"""Dataset cards of converted and mixed run directories (README.md, the Hub's YAML header + prose)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .. import __version__
from ..export import ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, PROVENANCE_FILE, TEXT_FILE, TRAIN_FILE, VALIDATION_FILE
from ..records import ExampleRow
from .output import split_rows
from .templates import TemplateSet

FILES = {
    ALPACA_FILE: "JSON list of `{instruction, input, output}` (the Alpaca shape)",
    JSONL_FILE: "the same rows as JSON Lines",
    MESSAGES_FILE: "chat format: `{\"messages\": [user, assistant]}` (TRL `SFTTrainer`)",
    TEXT_FILE: "`{\"text\": ...}` rendered in the Alpaca training prompt",
    TRAIN_FILE: "train split (parquet)",
    VALIDATION_FILE: "validation split (parquet): the sources' own eval rows and a hash-chosen share of groups",
    PROVENANCE_FILE: "per row: route, source file and row, family, template id (convert) or source (mix)",
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


def skipped_table(skipped: Counter[str]) -> list[str]:
    rows = [f"| `{reason}` | {count} |" for reason, count in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))]
    return ["| skipped because | rows |", "|---|---:|", *(rows or ["| (none) | 0 |"])]


def convert_card(run_dir: Path, *, title: str, source: str, family: str | None, templates: TemplateSet, rows: list[ExampleRow],
                 used: Counter[str], skipped: Counter[str], val_fraction: float, seed: int, shots: int) -> str:
    template_rows = [f"| `{t.id}` | {'yes' if t.spec.inverted else ''} | {'yes' if t.spec.options else ''} | "
                     f"{used.get(t.id, 0)} |" for t in templates.templates]
    lines = [
        *front_matter(["instruction-tuning", "templated", family or "user-templates"], len(rows)), "",
        f"# {title}", "",
        f"{len(rows)} instruction rows made from the labelled data `{source}` through templates "
        f"({family or 'user templates'}: {templates.task or 'no task named'}), by selfinstruct {__version__}.", "",
        "## How it was made", "",
        f"- Templates: {len(templates.templates)} from `{templates.source}`; one per row, chosen by a hash of the "
        f"row's fields and seed {seed}, so a re-run gives the same rows",
        f"- Few-shot exemplars per row: {shots}", f"- {split_line(rows, val_fraction, seed)}", "",
        "## Templates used", "", "| template | inverted | lists options | rows |", "|---|---|---|---:|",
        *template_rows, "", "## Rows left out", "", *skipped_table(skipped), "",
        "## Licence", "", f"Every row restates a row of `{source}`: that data set's licence and attribution apply "
        "to this one. Set the `license` field above to it.", "", *loading(run_dir), "",
    ]
    return "\n".join(lines)
