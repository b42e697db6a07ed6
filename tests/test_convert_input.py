"""Bad input to `selfinstruct convert`: one message naming the file, the row and the field, exit 2, nothing
written to --out (an earlier conversion there stays as it was); with --skip-bad, skipped rows counted by reason.
The inputs are the shared datasets, or small variants of them made in tmp_path."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conftest import SHARED
from selfinstruct.cli import app

DATA = SHARED / "datasets"
BANKING = DATA / "banking77" / "test.csv"
XQUAD = DATA / "xquad_en" / "xquad.en.json"
SNLI = DATA / "snli_dev" / "dev.jsonl"
runner = CliRunner()


@pytest.fixture(autouse=True)
def need_data() -> None:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is not beside the checkout")


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "400"})


def one_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [text for text in result.output.splitlines() if text.startswith("error:")]
    for fragment in fragments:
        assert fragment in line, line
    return line


def banking_rows(tmp_path: Path, edit: dict[int, str], name: str = "small.csv") -> Path:
    """The first 40 banking77 rows, with some texts replaced (row number from 1 -> text)."""
    with BANKING.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))[:41]
    for number, text in edit.items():
        rows[number][0] = text
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


def test_a_missing_column_names_the_field_and_the_columns(tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = one_error(invoke("convert", "--data", str(BANKING), "--task", "nli", "--out", str(out)),
                     str(BANKING), "field 'premise'", "the data has text, category", "missing column")
    assert "--columns premise=COLUMN" in line
    assert not out.exists()


def test_a_mapped_column_that_does_not_exist(tmp_path: Path) -> None:
    one_error(invoke("convert", "--data", str(BANKING), "--task", "classification", "--columns", "label=intent",
                     "--out", str(tmp_path / "out")), "field 'label'", "'intent'", "no such column")


def test_an_unknown_label_names_the_row_and_its_line(tmp_path: Path) -> None:
    one_error(invoke("convert", "--data", str(BANKING), "--task", "classification", "--labels",
                     "card_arrival=card arrival", "--out", str(tmp_path / "out")),
              f"{BANKING}: row 41 (line 42): field 'label'", "'card_linking'")


def test_an_answer_start_that_misses_its_answer(tmp_path: Path) -> None:
    squad = json.loads(XQUAD.read_text(encoding="utf-8"))
    squad["data"][0]["paragraphs"][0]["qas"][2]["answers"][0]["answer_start"] += 3
    path = tmp_path / "shifted.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    out = tmp_path / "out"
    one_error(invoke("convert", "--data", str(path), "--task", "extractive-qa", "--out", str(out)),
              f"{path}: row 3: field 'answer_start'", "to start with the answer")
    assert not out.exists()
    skipped = invoke("convert", "--data", str(path), "--task", "extractive-qa", "--out", str(out), "--skip-bad")
    assert skipped.exit_code == 0, skipped.output
    assert "skipped: bad_answer_start 1" in skipped.output
    assert "| `bad_answer_start` | 1 |" in (out / "README.md").read_text(encoding="utf-8")


def test_an_empty_text_is_reported_and_an_earlier_conversion_survives(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = banking_rows(tmp_path, {}, "good.csv")
    assert invoke("convert", "--data", str(good), "--task", "classification", "--out", str(out)).exit_code == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    bad = banking_rows(tmp_path, {7: "   "}, "bad.csv")
    one_error(invoke("convert", "--data", str(bad), "--task", "classification", "--out", str(out)),
              f"{bad}: row 7 (line 8): field 'text'", "a non-empty text")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".out.")]  # no building dir left


def write_templates(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text('task = "intent of a banking question"\n' + body, encoding="utf-8")
    return path


def test_a_template_naming_a_field_the_data_lacks(tmp_path: Path) -> None:
    templates = write_templates(tmp_path, '[[template]]\nid = "t1"\ninstruction = "Rate it."\n'
                                          'input = "{{ review }}"\noutput = "{{ category }}"\n')
    one_error(invoke("convert", "--data", str(BANKING), "--templates", str(templates), "--out", str(tmp_path / "o")),
              f"{templates}: template t1", "field 'review'", "no such field")


@pytest.mark.parametrize(("part", "field"), [("instruction", "instruction"), ("output", "output")])
def test_a_template_that_renders_empty(tmp_path: Path, part: str, field: str) -> None:
    parts = {"instruction": '"Name the intent."', "output": '"{{ category }}"'}
    parts[part] = '"{% if text.startswith(\'How\') %}{% endif %}"'
    body = "[[template]]\n" + "".join(f"{key} = {value}\n" for key, value in parts.items()) + 'input = "{{ text }}"\n'
    templates = write_templates(tmp_path, body)
    small = banking_rows(tmp_path, {})
    one_error(invoke("convert", "--data", str(small), "--templates", str(templates), "--out", str(tmp_path / "o")),
              f"{small}: row 1 (line 2): field '{field}'", f"an empty one (template mine-1)")


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    templates = write_templates(tmp_path, '[[template]]\ninstruction = "{{ text.__class__.__mro__ }}"\n'
                                          'output = "{{ category }}"\n')
    one_error(invoke("convert", "--data", str(banking_rows(tmp_path, {})), "--templates", str(templates),
                     "--out", str(tmp_path / "o")), "template mine-1", "row 1", "unsafe")


def test_a_grow_run_is_not_overwritten(tmp_path: Path) -> None:
    from selfinstruct.core.store import Store

    grow_run = tmp_path / "grown"
    Store.open(grow_run).close()
    one_error(invoke("convert", "--data", str(BANKING), "--task", "classification", "--out", str(grow_run)),
              "--out", "not a grow run")


def test_shots_never_come_from_an_eval_split(tmp_path: Path) -> None:
    one_error(invoke("convert", "--data", str(SNLI), "--task", "nli", "--split", "validation", "--shots", "2",
                     "--limit", "50", "--out", str(tmp_path / "o")), "--shots", "training split")
