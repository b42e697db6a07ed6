"""Every reader `convert` offers, on variants of the shared datasets written in tmp_path with `datasets` itself:
headerless TSV, parquet, a saved dataset directory, the hub's flattened SQuAD layout, label files, user
templates, few-shot rows, unanswerable questions, and choices that depend on the row, not its position."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import SHARED
from selfinstruct.convert import ConvertConfig, convert_dataset, convert_rows
from selfinstruct.convert.render import SHOT_FOOTER, SHOT_HEADER

DATA = SHARED / "datasets"
BANKING = DATA / "banking77" / "test.csv"
XQUAD = DATA / "xquad_en" / "xquad.en.json"
SNLI = DATA / "snli_dev" / "dev.jsonl"


@pytest.fixture(autouse=True)
def need_data() -> None:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is not beside the checkout")


def rows_of(config: ConvertConfig) -> list[tuple[str, str, str]]:
    _, rows, _ = convert_rows(config)
    return [(row.instruction, row.input, row.output) for row in rows]


def test_headerless_tsv_names_columns_by_position(tmp_path: Path) -> None:
    with BANKING.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))[1:101]
    tsv = tmp_path / "banking.tsv"
    tsv.write_text("".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    config = ConvertConfig(data=str(tsv), task="classification", columns="text=0,label=1", headerless=True,
                           out=tmp_path / "o")
    from_tsv = rows_of(config)
    from_csv = rows_of(ConvertConfig(data=str(BANKING), task="classification", limit=100, out=tmp_path / "o"))
    assert len(from_tsv) == 100
    assert [row[2] for row in from_tsv] == [row[2] for row in from_csv]


def test_parquet_and_saved_directories_read_like_the_json(tmp_path: Path) -> None:
    from datasets import load_dataset

    table = load_dataset("json", data_files=str(SNLI), split="train").select(range(300))
    table.to_parquet(str(tmp_path / "snli.parquet"))
    table.save_to_disk(str(tmp_path / "saved"))
    expected = rows_of(ConvertConfig(data=str(SNLI), task="nli", limit=300, out=tmp_path / "o"))
    assert rows_of(ConvertConfig(data=str(tmp_path / "snli.parquet"), task="nli", out=tmp_path / "o")) == expected
    assert rows_of(ConvertConfig(data=str(tmp_path / "saved"), task="nli", out=tmp_path / "o")) == expected


def flattened_squad(tmp_path: Path, impossible: int = 0) -> Path:
    """XQuAD in the hub's layout (one row per question, answers as {text: [...], answer_start: [...]})."""
    squad = json.loads(XQUAD.read_text(encoding="utf-8"))
    lines = []
    for article in squad["data"][:3]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = {"text": [a["text"] for a in qa["answers"]],
                           "answer_start": [a["answer_start"] for a in qa["answers"]]}
                if len(lines) < impossible:
                    answers = {"text": [], "answer_start": []}
                lines.append({"id": qa["id"], "title": article["title"], "context": paragraph["context"],
                              "question": qa["question"], "answers": answers})
    path = tmp_path / "squad_flat.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_both_squad_layouts_give_the_same_rows(tmp_path: Path) -> None:
    flat = flattened_squad(tmp_path)
    from_flat = rows_of(ConvertConfig(data=str(flat), task="extractive-qa", out=tmp_path / "o"))
    from_nested = rows_of(ConvertConfig(data=str(XQUAD), task="extractive-qa", limit=len(from_flat),
                                        out=tmp_path / "o"))
    assert len(from_flat) > 50 and from_flat == from_nested


def test_unanswerable_questions_are_skipped_or_answered(tmp_path: Path) -> None:
    flat = flattened_squad(tmp_path, impossible=4)
    skipped = convert_dataset(ConvertConfig(data=str(flat), task="extractive-qa", out=tmp_path / "skip"))
    assert skipped.skipped == {"unanswerable": 4}
    answered = convert_dataset(ConvertConfig(data=str(flat), task="extractive-qa", out=tmp_path / "answer",
                                             unanswerable="The passage does not say."))
    assert not answered.skipped and len(answered.rows) == len(skipped.rows) + 4
    firsts = [row for row in answered.rows if row.provenance["row"] <= 4 and not row.provenance["template"]
              .startswith("eqa-inv")]
    assert firsts and all(row.output == "The passage does not say." for row in firsts)


def test_a_label_file_and_a_label_map(tmp_path: Path) -> None:
    categories = DATA / "banking77" / "categories.json"
    result = convert_dataset(ConvertConfig(data=str(BANKING), task="classification", labels=str(categories),
                                           limit=200, out=tmp_path / "o"))
    names = set(json.loads(categories.read_text(encoding="utf-8")))
    assert {row.output for row in result.rows if not row.provenance["template"].startswith("cls-inv")} <= names
    # NLI's templates speak of entailment, neutral and contradiction: a map renames raw values to those.
    numbered = tmp_path / "snli_numbered.jsonl"
    codes = {"entailment": "e", "neutral": "n", "contradiction": "c"}
    source = [json.loads(line) for line in SNLI.read_text(encoding="utf-8").split("\n")[:200] if line]
    numbered.write_text("".join(json.dumps({**row, "label": codes[row["label"]]}) + "\n" for row in source))
    mapped = rows_of(ConvertConfig(data=str(numbered), task="nli", out=tmp_path / "m",
                                   labels="e=entailment,n=neutral,c=contradiction"))
    assert mapped == rows_of(ConvertConfig(data=str(SNLI), task="nli", limit=200, out=tmp_path / "m"))


def test_user_templates_from_the_issue(tmp_path: Path) -> None:
    boolq = tmp_path / "boolq.jsonl"
    source = [json.loads(line) for line in SNLI.read_text(encoding="utf-8").split("\n")[:60] if line]
    boolq.write_text("".join(json.dumps({"passage": row["premise"], "question": row["hypothesis"],
                                         "answer": str(row["label"] == "entailment")}) + "\n" for row in source))
    templates = tmp_path / "boolq.toml"
    templates.write_text(
        'task = "yes/no questions about a passage"\n[[template]]\nid = "boolq-plain"\n'
        'instruction = "Answer the question about the passage with yes or no."\n'
        'input = "{{ passage }}\\n\\nQuestion: {{ question }}"\n'
        "output = \"{{ 'Yes' if answer == 'True' else 'No' }}\"\n", encoding="utf-8")
    result = convert_dataset(ConvertConfig(data=str(boolq), templates=templates, out=tmp_path / "o"))
    assert len(result.rows) == 60 and result.used == {"boolq-plain": 60}
    assert result.rows[0].provenance["task"] == "yes/no questions about a passage"
    expected = ["Yes" if row["label"] == "entailment" else "No" for row in source]
    assert [row.output for row in result.rows] == expected


def test_few_shot_rows_take_other_rows_as_exemplars(tmp_path: Path) -> None:
    config = ConvertConfig(data=str(BANKING), task="classification", limit=300, shots=2, split="train",
                           out=tmp_path / "o")
    _, rows, _ = convert_rows(config)
    assert all(row.input.startswith(SHOT_HEADER) and SHOT_FOOTER in row.input for row in rows)
    assert all(row.input.count("\nAnswer: ") == 2 for row in rows)
    assert rows_of(config) == [(row.instruction, row.input, row.output) for row in rows]  # seeded


def test_the_choice_follows_the_row_not_its_position(tmp_path: Path) -> None:
    lines = [line for line in SNLI.read_text(encoding="utf-8").split("\n") if line][:400]
    (tmp_path / "reversed.jsonl").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    forward = rows_of(ConvertConfig(data=str(SNLI), task="nli", limit=400, out=tmp_path / "o"))
    backward = rows_of(ConvertConfig(data=str(tmp_path / "reversed.jsonl"), task="nli", out=tmp_path / "o"))
    assert backward == list(reversed(forward))
    reseeded = rows_of(ConvertConfig(data=str(SNLI), task="nli", limit=400, seed=1, out=tmp_path / "o"))
    assert reseeded != forward and len(reseeded) == len(forward)
