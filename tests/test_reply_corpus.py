"""The text parser on a corpus of replies in the shapes real base and instruct models write.

Every record of `tests/replies/` (TOML written by hand; JSONL recorded from the bundled model under llama.cpp)
holds a reply and its expected parse, written by reading the reply. Run against another checkout's parser with
`PYTHONPATH=<checkout> pytest tests/test_reply_corpus.py` to count what it gets wrong.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from selfinstruct.generate.parse import parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions

CORPUS = Path(__file__).parent / "replies"
STAGES = ("instructions", "classify", "instances", "alpaca")
CLASSIFY_ANSWERS = {"yes": True, "no": False, "neither": None}
# Every shape the corpus must hold at least once, and the least replies per stage.
REQUIRED_SHAPES = {
    "preamble_colon", "preamble_no_colon", "signoff", "markdown_headers", "bold_numbers", "code_fenced",
    "code_indented", "code_output_assign", "json_fenced", "json_plain", "numbering_slip", "crlf", "blank_lines",
    "refusal", "cut_mid_item", "base_model_continuation",
}
MIN_PER_STAGE = {"instructions": 25, "classify": 15, "instances_input_first": 25, "instances_output_first": 15,
                 "alpaca": 25}
MIN_RECORDED_PER_MODE = 20


def _load() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.toml")):
        for number, record in enumerate(tomllib.loads(path.read_text(encoding="utf-8"))["reply"], start=1):
            records.append({**record, "where": f"{path.name}#{number}"})
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            records.append({**json.loads(line), "where": f"{path.name}:{number}"})
    return records


RECORDS = _load()


def _stage_key(record: dict[str, Any]) -> str:
    if record["stage"] != "instances":
        return record["stage"]
    return "instances_output_first" if record.get("is_classification") else "instances_input_first"


def _ids() -> list[str]:
    seen: Counter[str] = Counter()
    ids = []
    for record in RECORDS:
        key = f"{_stage_key(record)}-{record['shape']}"
        seen[key] += 1
        ids.append(f"{key}-{seen[key]}")
    return ids


def parsed_as_data(record: dict[str, Any]) -> tuple[Any, str | None]:
    """The parser's reading of a record's reply, in the corpus' `expected` form, and its cut-off item."""
    text, finish = record["text"], record.get("finish_reason")
    stage = record["stage"]
    if stage == "classify":
        answer = parse_classification(text)
        return next(name for name, value in CLASSIFY_ANSWERS.items() if value is answer), None
    if stage == "instructions":
        parsed = parse_instructions(text, finish)
        return list(parsed.items), parsed.truncated
    if stage == "instances":
        parsed = parse_instances(text, bool(record.get("is_classification")), finish)
        return [{"input": item.input, "output": item.output} for item in parsed.items], parsed.truncated
    parsed = parse_alpaca_tasks(text, finish)
    return ([{"instruction": instruction, "input": item.input, "output": item.output}
             for instruction, item in parsed.items], parsed.truncated)


@pytest.mark.parametrize("record", RECORDS, ids=_ids())
def test_reply_parses_as_expected(record: dict[str, Any]) -> None:
    assert record.get("expected") is not None, f"{record['where']}: no expected parse written"
    items, truncated = parsed_as_data(record)
    assert items == record["expected"], record["where"]
    if record.get("finish_reason") == "length" and "truncated" in record:
        assert truncated is not None and truncated.startswith(record["truncated"]), record["where"]


def test_corpus_covers_every_stage_method_and_shape() -> None:
    assert len(RECORDS) >= 150
    assert all(record["stage"] in STAGES for record in RECORDS)
    per_stage = Counter(_stage_key(record) for record in RECORDS)
    assert all(per_stage[stage] >= least for stage, least in MIN_PER_STAGE.items()), per_stage
    assert {record["method"] for record in RECORDS} == {"self-instruct", "alpaca"}
    assert all((record["method"] == "alpaca") == (record["stage"] == "alpaca") for record in RECORDS)
    assert REQUIRED_SHAPES <= {record["shape"] for record in RECORDS}
    recorded = Counter(record["recorded"].rsplit(" ", 1)[-1] for record in RECORDS if record.get("recorded"))
    assert recorded["chat"] >= MIN_RECORDED_PER_MODE and recorded["completions"] >= MIN_RECORDED_PER_MODE
    # A cut reply and a refusal in every stage that can have them.
    for shape in ("refusal", "cut_mid_item"):
        assert {_stage_key(r) for r in RECORDS if r["shape"] == shape} >= set(MIN_PER_STAGE) - {"classify"}


def test_records_are_well_formed() -> None:
    for record in RECORDS:
        assert {"stage", "method", "shape", "text", "expected"} <= set(record), record["where"]
        assert record.get("finish_reason") in {"stop", "length", None}, record["where"]
        if record["stage"] == "instances":
            assert isinstance(record.get("is_classification"), bool), record["where"]
