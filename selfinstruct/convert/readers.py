"""Read labelled data through Hugging Face `datasets`: JSON, JSONL, CSV, TSV (with or without a header), parquet,
`save_to_disk` directories and hub names. Rows come out as plain dicts, in file order, numbered from 1.

SQuAD's nested v1.1/v2.0 JSON (articles > paragraphs > questions) is flattened here into the layout the hub uses
(`id, title, context, question, answers: {text: [...], answer_start: [...]}`), so one column mapping reads both.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import DataError

_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
# Enough of a file's start to see SQuAD's nesting: {"version": ..., "data": [{"title": ..., "paragraphs": [...
_SQUAD_HEAD = re.compile(r'"data"\s*:\s*\[\s*\{.*"paragraphs"\s*:', re.DOTALL)


@dataclass(frozen=True)
class SourceData:
    """A dataset's rows with where they came from: `name` labels groups and provenance, `where` errors."""

    name: str
    where: str
    rows: list[dict[str, Any]]
    columns: list[str]
    split: str | None
    header_lines: int = 0  # lines before the first row (a CSV header), so errors can name the file's line

    def locate(self, row: int) -> str:
        """'FILE: row N' (and its line in a CSV) for an error message; rows count from 1."""
        line = f" (line {row + self.header_lines})" if self.header_lines else ""
        return f"{self.where}: row {row}{line}"


def is_eval_split(split: str | None) -> bool:
    """Any split the source fixed other than train is held out (as `export.split_rows` does)."""
    return split is not None and split != "train"


def read_source(path: str, split: str | None = None, headerless: bool = False, limit: int | None = None) -> SourceData:
    """The rows of a file, a saved dataset directory or a hub dataset name (the network permitting)."""
    import datasets

    datasets.disable_progress_bars()
    local = Path(path)
    if local.is_dir():
        table, chosen = _load_saved(local, split)
        return _from_dataset(table, path, local.name, chosen, limit)
    if local.is_file():
        return _read_file(local, split, headerless, limit)
    if local.suffix.lower() in _BUILDERS or "/" not in path.strip("/") and "." in local.name:
        raise DataError(path, None, "an existing file, a saved dataset directory or a hub dataset name",
                        "no such file")
    table, chosen = _load_hub(path, split)
    return _from_dataset(table, path, path.replace("/", "__"), chosen, limit)


def _read_file(path: Path, split: str | None, headerless: bool, limit: int | None) -> SourceData:
    import datasets

    suffix = path.suffix.lower()
    builder = _BUILDERS.get(suffix)
    if builder is None:
        raise DataError(str(path), None, f"a file ending in {', '.join(sorted(_BUILDERS))}", suffix or "no suffix")
    options: dict[str, Any] = {}
    header_lines = 0
    if builder == "csv":
        options = _csv_options(path, suffix, headerless)
        header_lines = 0 if headerless else 1
    elif builder == "json" and suffix == ".json" and _is_nested_squad(path):
        table = _load(lambda: datasets.load_dataset("json", data_files=str(path), field="data", split="train"), path)
        rows = _flatten_squad(table.to_list())
        return _limited(SourceData(path.stem, str(path), rows, _columns(rows), split), limit)
    table = _load(lambda: datasets.load_dataset(builder, data_files=str(path), split="train", **options), path)
    return _from_dataset(table, str(path), path.stem, split, limit, header_lines)


def _csv_options(path: Path, suffix: str, headerless: bool) -> dict[str, Any]:
    delimiter = "\t" if suffix == ".tsv" else ","
    # keep_default_na=False: an empty cell stays "", so "empty text" is reported as such rather than as None.
    options: dict[str, Any] = {"delimiter": delimiter, "keep_default_na": False}
    if headerless:
        with path.open(encoding="utf-8", newline="") as stream:
            first = next(csv.reader(stream, delimiter=delimiter), [])
        options |= {"column_names": [str(n) for n in range(len(first))]}
    return options


def _is_nested_squad(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as stream:
        return bool(_SQUAD_HEAD.search(stream.read(65536)))


def _load(action: Any, path: Path) -> Any:
    try:
        return action()
    except Exception as err:  # datasets raises many kinds (pyarrow, pandas, json) for one cause: an unreadable file
        raise DataError(str(path), None, "a file its format's reader can parse", _first_line(err)) from err


def _load_saved(path: Path, split: str | None) -> tuple[Any, str | None]:
    import datasets

    loaded = _load(lambda: datasets.load_from_disk(str(path)), path)
    return _pick_split(loaded, split, str(path))


def _load_hub(name: str, split: str | None) -> tuple[Any, str | None]:
    import datasets

    try:
        loaded = datasets.load_dataset(name)
    except Exception as err:
        raise DataError(name, None, "a hub dataset reachable from here (or a local path)", _first_line(err)) from err
    return _pick_split(loaded, split, name)


def _pick_split(loaded: Any, split: str | None, where: str) -> tuple[Any, str | None]:
    """The chosen split of a DatasetDict (train by default) and its name; a single Dataset as it is."""
    if not hasattr(loaded, "keys"):
        return loaded, split
    names = list(loaded.keys())
    chosen = split or ("train" if "train" in names else names[0])
    if chosen not in names:
        raise DataError(where, "--split", f"one of the splits {', '.join(names)}", chosen)
    return loaded[chosen], chosen


def _from_dataset(table: Any, where: str, name: str, split: str | None, limit: int | None,
                  header_lines: int = 0) -> SourceData:
    if limit is not None:
        table = table.select(range(min(limit, len(table))))
    return SourceData(name, where, table.to_list(), list(table.column_names), split, header_lines)


def _limited(data: SourceData, limit: int | None) -> SourceData:
    if limit is None:
        return data
    return SourceData(data.name, data.where, data.rows[:limit], data.columns, data.split, data.header_lines)


def _flatten_squad(articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per question: SQuAD v2.0's unanswerable ones keep `is_impossible` and empty answers."""
    rows = []
    for article in articles:
        for paragraph in article.get("paragraphs") or []:
            for qa in paragraph.get("qas") or []:
                answers = qa.get("answers") or []
                rows.append({
                    "id": qa.get("id"), "title": article.get("title"), "context": paragraph.get("context"),
                    "question": qa.get("question"),
                    "answers": {"text": [a.get("text") for a in answers],
                                "answer_start": [a.get("answer_start") for a in answers]},
                    "is_impossible": bool(qa.get("is_impossible", False)),
                })
    return rows


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(rows[0]) if rows else []


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
