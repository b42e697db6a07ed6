"""Export formats: each file is read back with the `datasets` builders trainers use, and checked row by row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from selfinstruct.export.formats import CARD_FILE
from selfinstruct.core.errors import ConfigError, InputError
from selfinstruct.export.formats import (
    ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, PROVENANCE_FILE, TEXT_FILE, TRAIN_FILE, VALIDATION_FILE, export_alpaca,
    resolve_formats, split_examples, to_messages, to_text,
)
from selfinstruct.publish import export_run
from selfinstruct.core.atomic import write_atomic
from selfinstruct.core.records import AlpacaExample, Candidate, Instance, Rejection, SeedTask
from selfinstruct.core.store import RoundRecord, Store
from selfinstruct.export.trainer_files import DATASET_INFO_FILE

datasets = pytest.importorskip("datasets", reason="the datasets package (dev dependency) reads the exports back")

SEEDS = [SeedTask(id=f"s{i}", instruction=text, instances=[Instance(output="ok")]) for i, text in enumerate(
    ["Name three fruits.", "Write a haiku about rain.", "Translate the sentence into French."])]
EXAMPLES = [
    AlpacaExample(instruction="Explain tides to a child.", input="", output="The Moon pulls the sea."),
    AlpacaExample(instruction="Summarize the paragraph in one sentence.", input="Rain fell all day.\nIt stopped.",
                  output="It rained, then stopped."),
    AlpacaExample(instruction="Écris une phrase en français.", input="", output="Il fait beau — très beau."),
    AlpacaExample(instruction="Escape <b>this</b> & that.", input="<script>x</script>", output="&lt;done&gt;"),
] + [AlpacaExample(instruction=f"Write a poem number {i} about the sea.", input="", output=f"Poem {i}.")
     for i in range(46)]


def _provenance(cand: Candidate) -> dict[str, object]:
    return {"teacher": "fake-model", "backend": "openai", "method": "self-instruct", "round": cand.round,
            "demo_ids": list(cand.demo_ids), "prompt_hash": cand.prompt_hash,
            "is_classification": cand.is_classification, "nearest": cand.nearest,
            "nearest_rouge_l": cand.nearest_rouge_l}


def make_run(run_dir: Path, examples: list[AlpacaExample] = EXAMPLES) -> Path:
    """A run directory filled through the store's API: seeds, one round of accepted examples, one rejection."""
    accepted = [Candidate(instruction=e.instruction, instances=(Instance(input=e.input, output=e.output),), round=1,
                          prompt_hash="p1", demo_ids=("s0", "s1"), nearest="Name three fruits.", nearest_rouge_l=0.25)
                for e in examples]
    dropped = Rejection(candidate=Candidate(instruction="Draw a map.", round=1), reason="blacklist", detail="map")
    with Store.open(run_dir) as store:
        store.add_seeds(SEEDS, "c0ffee" * 10)
        store.set_meta("config", json.dumps({"backend": "openai", "method": "self-instruct", "seeds": "seeds.jsonl",
                                             "filters": {"rouge_threshold": 0.7}}))
        stats = {"round": 1, "generated": len(examples) + 1, "kept": len(examples), "dropped": {"blacklist": 1},
                 "accepted_total": len(examples), "requests": 3, "failed": 0, "seconds": 2.0}
        store.commit_round(RoundRecord(1, accepted, [dropped], stats), _provenance)
    return run_dir


def _load_json(path: Path, cache: Path) -> list[dict]:
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache)).to_list()


def test_every_json_format_loads_with_datasets(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    written = export_run(run, ["alpaca", "jsonl", "messages", "text"])
    assert [p.name for p in written] == [ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, TEXT_FILE, DATASET_INFO_FILE,
                                         PROVENANCE_FILE, CARD_FILE]
    cache = tmp_path / "hf"
    rows = [e.model_dump() for e in EXAMPLES]
    assert _load_json(run / ALPACA_FILE, cache) == rows
    assert _load_json(run / JSONL_FILE, cache) == rows
    assert _load_json(run / MESSAGES_FILE, cache) == [to_messages(e) for e in EXAMPLES]
    assert _load_json(run / TEXT_FILE, cache) == [{"text": to_text(e)} for e in EXAMPLES]


def test_parquet_split_loads_with_datasets(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["parquet"], val_fraction=0.1, seed=3)
    splits = datasets.load_dataset("parquet", data_files={"train": str(run / TRAIN_FILE),
                                                          "validation": str(run / VALIDATION_FILE)},
                                   cache_dir=str(tmp_path / "hf"))
    train, validation = splits["train"].to_list(), splits["validation"].to_list()
    assert len(validation) == math.ceil(len(EXAMPLES) * 0.1)
    assert sorted(map(str, train + validation)) == sorted(str(e.model_dump()) for e in EXAMPLES)
    assert splits["train"].column_names == ["instruction", "input", "output"]


@pytest.mark.parametrize(("example", "expected"), [
    (AlpacaExample(instruction="Add the numbers.", input="2, 3", output="5"),
     "Below is an instruction that describes a task, paired with an input that provides further context. "
     "Write a response that appropriately completes the request.\n\n"
     "### Instruction:\nAdd the numbers.\n\n### Input:\n2, 3\n\n### Response:\n5"),
    (AlpacaExample(instruction="Name a colour.", input="", output="Blue"),
     "Below is an instruction that describes a task. Write a response that appropriately completes the request."
     "\n\n### Instruction:\nName a colour.\n\n### Response:\nBlue"),
])
def test_text_uses_the_alpaca_prompt(example: AlpacaExample, expected: str) -> None:
    assert to_text(example) == expected


@pytest.mark.parametrize(("example", "user"), [
    (AlpacaExample(instruction="Add the numbers.", input="2, 3", output="5"), "Add the numbers.\n\n2, 3"),
    (AlpacaExample(instruction="Name a colour.", input="", output="Blue"), "Name a colour."),
])
def test_messages_put_the_input_after_a_blank_line(example: AlpacaExample, user: str) -> None:
    assert to_messages(example) == {"messages": [{"role": "user", "content": user},
                                                 {"role": "assistant", "content": example.output}]}


def test_split_is_deterministic_and_ignores_order() -> None:
    train, validation = split_examples(EXAMPLES, 0.1, seed=7)
    again = split_examples(list(reversed(EXAMPLES)), 0.1, seed=7)[1]
    assert sorted(e.instruction for e in validation) == sorted(e.instruction for e in again)
    assert len(validation) == 5 and len(train) == len(EXAMPLES) - 5
    assert [e for e in EXAMPLES if e in train] == train  # the pool's order is kept
    assert split_examples(EXAMPLES, 0.1, seed=8)[1] != validation


@pytest.mark.parametrize(("count", "fraction", "held_out"), [
    (0, 0.02, 0),   # an empty run exports empty splits
    (1, 0.5, 0),    # train never goes empty
    (10, 0.0, 0),
    (10, 0.02, 1),  # ceil: a small run still gets a validation row
    (100, 0.02, 2),
])
def test_split_sizes(count: int, fraction: float, held_out: int) -> None:
    examples = [AlpacaExample(instruction=f"Task {i}.", output="x") for i in range(count)]
    train, validation = split_examples(examples, fraction)
    assert (len(train), len(validation)) == (count - held_out, held_out)


def test_provenance_and_card_come_with_every_export(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    export_run(run, ["all"])
    rows = [json.loads(line) for line in (run / PROVENANCE_FILE).read_text(encoding="utf-8").splitlines()]
    assert [row["instruction"] for row in rows] == [e.instruction for e in EXAMPLES]
    assert rows[0] | {"created": None} == {
        "index": 0, "instruction": EXAMPLES[0].instruction, "teacher": "fake-model", "backend": "openai",
        "method": "self-instruct", "round": 1, "demo_ids": ["s0", "s1"], "prompt_hash": "p1",
        "is_classification": False, "nearest": "Name three fruits.", "nearest_rouge_l": 0.25,
        # No judge has scored this run: the judge's keys are there, empty (tests/test_judge.py fills them).
        "score": None, "judge_reason": None, "category": None, "difficulty": None, "judge_model": None,
        "rubric_version": None, "group": "task:4", "instance": 0, "created": None}
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    for expected in ("fake-model", "c0ffee" * 10, "load_dataset(\"json\", data_files=\"alpaca_data.json\"",
                     "path: train.parquet", "`blacklist` | 1", "## Licence", "Distinct root verbs"):
        assert expected in card


def test_formats_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    assert resolve_formats(["all"]) == ["alpaca", "jsonl", "messages", "prompt_completion", "text", "parquet"]
    assert resolve_formats(["Parquet", "alpaca"]) == resolve_formats(["parquet,alpaca"]) == ["alpaca", "parquet"]
    with pytest.raises(ConfigError, match="csv"):
        export_run(run, ["alpaca", "csv"])
    with pytest.raises(ConfigError, match="val-fraction"):
        export_run(run, ["alpaca"], val_fraction=1.0)
    assert not (run / ALPACA_FILE).exists()


def test_a_directory_without_a_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="selfinstruct.sqlite"):
        export_run(tmp_path, ["all"])
    assert list(tmp_path.iterdir()) == []


def test_export_alpaca_and_write_atomic_keep_their_contract(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    with Store.open(run) as store:
        path = export_alpaca(store, run)
    assert json.loads(path.read_text(encoding="utf-8")) == [e.model_dump() for e in EXAMPLES]
    write_atomic(run / "x.txt", "héllo\n")
    assert (run / "x.txt").read_text(encoding="utf-8") == "héllo\n"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def _classification_run(run_dir: Path, tasks: int = 30) -> Path:
    """Tasks with several instances each; the classification ones list their labels in order, output-first."""
    accepted = [
        Candidate(instruction=f"Label the sentiment of review number {i}: positive, negative or mixed.",
                  instances=(Instance(input=f"Loved it {i}.", output="Positive"),
                             Instance(input=f"Hated it {i}.", output="Negative"),
                             Instance(input=f"Good food, slow service {i}.", output="Mixed")),
                  is_classification=True, round=1)
        for i in range(tasks)
    ]
    with Store.open(run_dir) as store:
        store.add_seeds(SEEDS, "c0ffee" * 10)
        store.commit_round(RoundRecord(1, accepted, [], {"round": 1, "generated": tasks, "kept": tasks}), _provenance)
    return run_dir


def test_every_instance_is_a_row_and_a_classification_task_exports_each_label(tmp_path: Path) -> None:
    run = _classification_run(tmp_path / "run")
    export_run(run, ["alpaca"])
    rows = json.loads((run / ALPACA_FILE).read_text(encoding="utf-8"))
    assert len(rows) == 90
    first_task = [row for row in rows if row["instruction"].endswith("number 0: positive, negative or mixed.")]
    assert [row["output"] for row in first_task] == ["Positive", "Negative", "Mixed"]
    export_run(run, ["alpaca"], instances="first")
    assert {row["output"] for row in json.loads((run / ALPACA_FILE).read_text(encoding="utf-8"))} == {"Positive"}
    export_run(run, ["alpaca"], instances=2)
    assert len(json.loads((run / ALPACA_FILE).read_text(encoding="utf-8"))) == 60
    with pytest.raises(ConfigError, match="all, first or a positive number"):
        export_run(run, ["alpaca"], instances="some")


def test_rows_of_one_task_never_straddle_the_split(tmp_path: Path) -> None:
    run = _classification_run(tmp_path / "run")
    export_run(run, ["parquet"], val_fraction=0.2)
    import pyarrow.parquet as pq

    train = pq.read_table(run / TRAIN_FILE).to_pylist()
    validation = pq.read_table(run / VALIDATION_FILE).to_pylist()
    assert len(train) + len(validation) == 90 and len(validation) >= 18
    assert not {row["instruction"] for row in train} & {row["instruction"] for row in validation}


def test_exports_are_readable_by_group_and_others(tmp_path: Path) -> None:
    import os
    import stat

    run = make_run(tmp_path / "run")
    old = os.umask(0o022)
    try:
        paths = export_run(run, ["all"])
    finally:
        os.umask(old)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
