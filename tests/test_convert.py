"""`selfinstruct convert` on the four shared public datasets: every family's templates used, byte-identical
re-runs, exports that `datasets` loads, and the run directory export/verify/mix read like a grow run's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SHARED
from selfinstruct.cli import app
from selfinstruct.convert import ConvertConfig, convert_dataset
from selfinstruct.convert.templates import load_family
from selfinstruct.export.formats import ALPACA_FILE, PROVENANCE_FILE, TRAIN_FILE, VALIDATION_FILE
from selfinstruct.core.store import Store

DATA = SHARED / "datasets"
CASES = {
    # family, file, rows in the file
    "xquad": ("extractive-qa", DATA / "xquad_en" / "xquad.en.json", 1190),
    "banking77": ("classification", DATA / "banking77" / "test.csv", 3080),
    "scitldr": ("summarization", DATA / "scitldr_a" / "dev.jsonl", 619),
    "snli": ("nli", DATA / "snli_dev" / "dev.jsonl", 9842),
}
runner = CliRunner()


def need_data() -> None:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is not beside the checkout")


def invoke(args: list[str]) -> object:
    return runner.invoke(app, args, env={"COLUMNS": "400"})


def jsonl(path: Path) -> list[dict[str, object]]:
    # Split on "\n" only: a text may hold U+2028, which str.splitlines() would also split on.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def snapshot(directory: Path) -> dict[str, bytes]:
    # The store holds migration timestamps; every file a trainer reads must be identical.
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())
            if path.is_file() and not path.name.startswith("selfinstruct.sqlite")}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need_data()
    base = tmp_path_factory.mktemp("converted")
    outs = {}
    for name, (family, path, _) in CASES.items():
        result = invoke(["convert", "--data", str(path), "--task", family, "--out", str(base / name)])
        assert result.exit_code == 0, result.output
        outs[name] = base / name
    return outs


@pytest.mark.parametrize("name", list(CASES))
def test_each_dataset_uses_every_template_of_its_family(name: str, converted: dict[str, Path]) -> None:
    family, _, count = CASES[name]
    rows = json.loads((converted[name] / ALPACA_FILE).read_text(encoding="utf-8"))
    provenance = jsonl(converted[name] / PROVENANCE_FILE)
    assert len(rows) == len(provenance) == count  # none of the four has a bad or unanswerable row
    used = Counter(item["template"] for item in provenance)
    assert set(used) == {template.id for template in load_family(family).templates}
    assert {item["family"] for item in provenance} == {family}
    assert all(row["instruction"].strip() and row["output"].strip() for row in rows)
    assert [item["row"] for item in provenance] == list(range(1, count + 1))


def test_rows_say_what_their_template_says(converted: dict[str, Path]) -> None:
    rows = json.loads((converted["snli"] / ALPACA_FILE).read_text(encoding="utf-8"))
    provenance = jsonl(converted["snli"] / PROVENANCE_FILE)
    source = jsonl(CASES["snli"][1])
    for row, item in zip(rows, provenance):
        gold = source[item["row"] - 1]
        if item["template"] == "nli-three-labels":
            assert row["output"] == gold["label"]
            assert gold["premise"].strip() in row["input"] and gold["hypothesis"].strip() in row["input"]
        if item["template"] == "nli-inv-contradict":
            assert gold["label"] == "contradiction" and row["output"] == gold["hypothesis"].strip()
    qa = json.loads((converted["xquad"] / ALPACA_FILE).read_text(encoding="utf-8"))
    qa_provenance = jsonl(converted["xquad"] / PROVENANCE_FILE)
    squad = json.loads(CASES["xquad"][1].read_text(encoding="utf-8"))
    answers = {qa_item["id"]: qa_item["answers"][0]["text"] for article in squad["data"]
               for paragraph in article["paragraphs"] for qa_item in paragraph["qas"]}
    for row, item in zip(qa, qa_provenance):
        if item["template"] == "eqa-span":
            assert row["output"] == answers[item["id"]]


def test_a_second_run_writes_byte_identical_files(converted: dict[str, Path], tmp_path: Path) -> None:
    family, path, _ = CASES["banking77"]
    again = invoke(["convert", "--data", str(path), "--task", family, "--out", str(tmp_path / "banking77")])
    assert again.exit_code == 0, again.output
    first, second = snapshot(converted["banking77"]), snapshot(tmp_path / "banking77")
    assert set(first) >= {ALPACA_FILE, TRAIN_FILE, VALIDATION_FILE, PROVENANCE_FILE, "README.md"}
    assert first == second


def test_every_export_loads_with_datasets(converted: dict[str, Path]) -> None:
    from datasets import load_dataset

    out = converted["scitldr"]
    for name in ("alpaca_data.json", "alpaca_data.jsonl", "messages.jsonl", "text.jsonl"):
        assert len(load_dataset("json", data_files=str(out / name), split="train")) == 619
    splits = load_dataset("parquet", data_files={"train": str(out / TRAIN_FILE),
                                                 "validation": str(out / VALIDATION_FILE)})
    assert len(splits["train"]) + len(splits["validation"]) == 619 and len(splits["validation"]) > 0


def test_the_run_directory_reads_like_a_grow_run(converted: dict[str, Path]) -> None:
    out = converted["xquad"]
    with Store.open(out) as store:
        rows = store.example_rows()
        assert len(rows) == 1190 and store.accepted_count() == 0
    assert rows[0].group == "xquad.en:1" and rows[0].provenance["route"] == "convert"
    assert oct((out / ALPACA_FILE).stat().st_mode & 0o777) == "0o644"
    verified = invoke(["verify", "--out", str(out)])
    assert verified.exit_code == 0, verified.output


def test_a_file_split_keeps_its_rows_out_of_train(tmp_path: Path) -> None:
    need_data()
    config = ConvertConfig(data=str(CASES["scitldr"][1]), task="summarization", out=tmp_path / "dev", split="dev")
    result = convert_dataset(config)
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "dev" / TRAIN_FILE).num_rows == 0
    assert pq.read_table(tmp_path / "dev" / VALIDATION_FILE).num_rows == len(result.rows) == 619


def test_export_and_report_treat_a_conversion_like_a_grow_run(converted: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "scitldr"
    shutil.copytree(converted["scitldr"], out)
    before = snapshot(out)
    exported = invoke(["export", "--out", str(out), "--format", "all"])
    assert exported.exit_code == 0, exported.output
    assert snapshot(out) == before  # the same rows, the same card (rendered from the store)
    reported = invoke(["report", "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    assert (out / "report" / "report.html").is_file()
