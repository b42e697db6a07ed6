"""Convert a labelled data set into instruction rows: read, map fields, render templates, write a run directory.

`convert_dataset` is the library call behind `selfinstruct convert`. A bad row stops the conversion with one
message naming the file, the row and the field, before anything is written; with `skip_bad` it is counted by
reason instead. Unanswerable questions and unlabelled pairs are skipped by design and counted the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateError as JinjaError
from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ConfigError, DataError, TemplateError
from ..core.records import ExampleRow
from ..core.store import SkippedRow
from .fields import (
    FAMILY_FIELDS, FIXED_OPTIONS, LABELLED, RowProblem, field_reader, parse_columns, read_labels, resolve_columns,
)
from .readers import SourceData, is_eval_split, read_source
from .render import Rendered, choose_template, pick_shots, render_row, row_key, with_shots
from .templates import Template, TemplateSet, check_names, load_family, load_template_file, template_context

# Skipped whatever --skip-bad says: the row has nothing to train on, by the data's own convention.
BY_DESIGN = frozenset({"unanswerable", "no_label"})


class ConvertConfig(BaseModel):
    """Settings of one conversion (the flags of `selfinstruct convert`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(description="Data file (JSON, JSONL, CSV, TSV, parquet), saved dataset dir or hub name.")
    out: Path = Field(description="Run directory to write (store, exports, card); replaced only on success.")
    task: str | None = Field(None, description="Built-in family: extractive-qa, classification, summarization, "
                                               "nli, paraphrase, yes-no-qa.")
    templates: Path | None = Field(None, description="A TOML file of your own templates (instead of the family's).")
    columns: str | None = Field(None, description="field=column,… where the usual column names do not fit.")
    labels: str | None = Field(None, description="value=label,… or a file (JSON object, JSON list, lines).")
    split: str | None = Field(None, description="Split of the data: picks one of a saved/hub dataset, and marks "
                                                "a file's rows (validation/test rows never enter train).")
    limit: int | None = Field(None, ge=1, description="Read at most this many rows.")
    seed: int = Field(0, description="Seed of the per-row template choice and of few-shot exemplars.")
    shots: int = Field(0, ge=0, le=16, description="Few-shot exemplars per row, from the data's training part.")
    skip_bad: bool = Field(False, description="Skip bad rows (counted by reason) instead of stopping.")
    headerless: bool = Field(False, description="CSV/TSV without a header row: columns are named 0, 1, ….")
    unanswerable: str | None = Field(None, description="Answer given to unanswerable questions; skipped if unset.")
    val_fraction: float = Field(0.02, ge=0, lt=1, description="Share of rows without a source split in validation.")


@dataclass
class ConvertResult:
    """What a conversion wrote and left out."""

    out: Path
    source: str
    family: str | None
    rows: list[ExampleRow]
    templates: list[str]
    used: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)


@dataclass
class _Prepared:
    """The source read and the templates checked against it, before any row is rendered."""

    source: SourceData
    family: str | None
    templates: TemplateSet
    contexts: list[dict[str, Any] | None]
    keys: list[int]  # per row: the hash that picks its template (of the family's fields, else of the raw row)
    skipped: list[SkippedRow]


def load_templates(config: ConvertConfig) -> tuple[TemplateSet, str | None]:
    if config.templates is not None:
        loaded = load_template_file(config.templates)
        family = config.task or loaded.family
        if family is not None:
            load_family(family)  # names an unknown family the same way --task does
        return loaded, family
    if config.task is None:
        raise ConfigError("--task", None, "a family (or --templates FILE)", "neither")
    return load_family(config.task), config.task


def prepare(config: ConvertConfig) -> _Prepared:
    """Read the data, map its fields, check every template's names: every check that needs no rendering."""
    templates, family = load_templates(config)
    source = read_source(config.data, config.split, config.headerless, config.limit)
    if not source.rows:
        raise DataError(source.where, None, "at least one row", "none")
    labels = read_labels(config.labels)
    _check_fixed_labels(family, labels)
    contexts, fields, skipped = _contexts(config, source, family, labels)
    keys = [0 if found is None else row_key(config.seed, found if family else raw)
            for raw, found in zip(source.rows, fields)]
    available = {"row", *source.columns}
    if family:
        available |= {spec.name for spec in FAMILY_FIELDS[family]} | {"answer", "options"}
    check_names(templates, available)
    return _Prepared(source, family, templates, contexts, keys, skipped)


def _contexts(config: ConvertConfig, source: SourceData, family: str | None,
              labels: dict[str, str] | None) -> tuple[list[dict[str, Any] | None], list[Any], list[SkippedRow]]:
    columns = resolve_columns(family, parse_columns(config.columns), source.columns, source.where) if family else {}
    read = field_reader(family, columns, labels, config.unanswerable) if family else None
    fields: list[dict[str, Any] | None] = []
    skipped: list[SkippedRow] = []
    for number, raw in enumerate(source.rows, 1):
        try:
            fields.append(read(raw) if read else {})
        except RowProblem as problem:
            skipped.append(_skip_or_raise(config, source, number, problem))
            fields.append(None)
    options = _options(family, labels, fields)
    defaults = {spec.name: "" for spec in FAMILY_FIELDS.get(family or "", ())}
    contexts = [None if found is None else template_context({**raw, **defaults, **found, "options": options,
                                                                "row": raw})
                for raw, found in zip(source.rows, fields)]
    return contexts, fields, skipped


def _check_fixed_labels(family: str | None, labels: dict[str, str] | None) -> None:
    fixed = FIXED_OPTIONS.get(family or "")
    if fixed and labels and not set(labels.values()) <= set(fixed):
        wrong = sorted(set(labels.values()) - set(fixed))
        raise ConfigError("--labels", None, f"labels of {family}: raw value={'|'.join(fixed)}", ", ".join(wrong))


def _options(family: str | None, labels: dict[str, str] | None, fields: list[dict[str, Any] | None]) -> list[str]:
    """The answer options a template may list: the label map's labels, the family's, or those in the data."""
    if family not in LABELLED:
        return []
    if family in FIXED_OPTIONS:  # a --labels map renames raw values to these; the templates test them
        return FIXED_OPTIONS[family]
    if labels is not None:
        return list(dict.fromkeys(labels.values()))
    return sorted({found["label"] for found in fields if found is not None})


def _skip_or_raise(config: ConvertConfig, source: SourceData, number: int, problem: RowProblem) -> SkippedRow:
    if problem.reason not in BY_DESIGN and not config.skip_bad:
        raise DataError(source.locate(number), problem.field, problem.expected, problem.got)
    detail = f"expected {problem.expected}" + (f", got {problem.got}" if problem.got else "")
    return SkippedRow(source.where, number, problem.reason, problem.field, detail)


def render_rows(config: ConvertConfig, prepared: _Prepared) -> tuple[list[ExampleRow], list[SkippedRow]]:
    """Every row that has fields, rendered by its template (and its exemplars, with --shots)."""
    source, templates = prepared.source, prepared.templates.templates
    rendered: list[tuple[int, Template, Rendered, int]] = []
    skipped = list(prepared.skipped)
    for number, context in enumerate(prepared.contexts, 1):
        if context is None:
            continue
        key = prepared.keys[number - 1]
        try:
            template, row = _template_for(templates, context, key, prepared, number)
            _check_rendered(row)
        except RowProblem as problem:
            skipped.append(_skip_or_raise(config, source, number, problem))
            continue
        rendered.append((number, template, row, key))
    if config.shots:
        rendered = _add_shots(config, prepared, rendered)
    return [_example(config, prepared, number, row) for number, _, row, _ in rendered], skipped


def _template_for(templates: tuple[Template, ...], context: dict[str, Any], key: int, prepared: _Prepared,
                  number: int) -> tuple[Template, Rendered]:
    try:
        template = choose_template(templates, context, key)
    except JinjaError as err:
        raise _render_error(prepared, number, "when", err) from err
    if template is None:
        raise RowProblem("no_template", None, "a template whose `when` holds for the row", "none")
    try:
        return template, render_row(template, context)
    except JinjaError as err:
        raise _render_error(prepared, number, template.id, err) from err


def _render_error(prepared: _Prepared, number: int, template_id: str, err: JinjaError) -> TemplateError:
    where = f"{prepared.templates.source}: template {template_id}: {prepared.source.locate(number)}"
    return TemplateError(where, None, "a template that renders this row", err.message or type(err).__name__)


def _check_rendered(row: Rendered) -> None:
    if not row.instruction:
        raise RowProblem("empty_instruction", "instruction", "a non-empty rendered instruction",
                         f"an empty one (template {row.template})")
    if not row.output:
        raise RowProblem("empty_output", "output", "a non-empty rendered output", f"an empty one (template {row.template})")


def _add_shots(config: ConvertConfig, prepared: _Prepared,
               rendered: list[tuple[int, Template, Rendered, int]]) -> list[tuple[int, Template, Rendered, int]]:
    if is_eval_split(prepared.source.split):
        raise ConfigError("--shots", None, "exemplars from a training split; the data is marked "
                          f"--split {prepared.source.split}", f"--shots {config.shots}")
    indexes = list(range(len(rendered)))
    out = []
    for position, (number, template, row, key) in enumerate(rendered):
        exemplars = []
        for other in pick_shots(indexes, key, position, config.shots):
            context = prepared.contexts[rendered[other][0] - 1]
            assert context is not None
            exemplars.append(render_row(template, context) if template.applies(context) else rendered[other][2])
        out.append((number, template, with_shots(row, exemplars), key))
    return out


def _example(config: ConvertConfig, prepared: _Prepared, number: int, row: Rendered) -> ExampleRow:
    source, raw = prepared.source, prepared.source.rows[number - 1]
    provenance: dict[str, Any] = {
        "route": "convert", "family": prepared.family, "template": row.template, "task": prepared.templates.task,
        "templates_file": prepared.templates.source, "source": source.where, "row": number,
        "id": raw.get("id"), "shots": config.shots, "seed": config.seed,
    }
    # Every field is a str we rendered or a dict we built: construct without re-validating (a third of the
    # conversion's time otherwise).
    return ExampleRow.model_construct(instruction=row.instruction, input=row.input, output=row.output,
                                      group=f"{source.name}:{number}", split=source.split, provenance=provenance)


def convert_rows(config: ConvertConfig) -> tuple[_Prepared, list[ExampleRow], list[SkippedRow]]:
    """Read, check and render without writing anything (the benchmark and `convert_dataset` share it)."""
    prepared = prepare(config)
    rows, skipped = render_rows(config, prepared)
    if not rows:
        raise DataError(prepared.source.where, None, "at least one convertible row",
                        f"none ({len(skipped)} skipped)")
    return prepared, rows, skipped




def convert_dataset(config: ConvertConfig) -> ConvertResult:
    """Convert `config.data` into the run directory `config.out` (replacing an earlier conversion there)."""
    from .card import convert_run_card
    from .output import write_run_dir

    prepared, rows, skipped = convert_rows(config)
    templates = prepared.templates
    meta = {"convert": config.model_dump_json(), "family": prepared.family or "", "task": templates.task,
            "source": prepared.source.where, "templates_file": templates.source,
            "templates": json.dumps([{"id": t.id, "inverted": t.spec.inverted, "options": t.spec.options}
                                     for t in templates.templates])}
    files = write_run_dir(config.out, "convert", rows, skipped, meta, config.val_fraction, config.seed,
                          convert_run_card)
    return ConvertResult(config.out, prepared.source.where, prepared.family, rows,
                         [t.id for t in templates.templates], Counter(str(row.provenance["template"]) for row in rows),
                         Counter(row.reason for row in skipped), files)
