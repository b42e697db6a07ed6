"""dedup: candidates decided in order against a growing pool; files in, decisions out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from selfinstruct.core.errors import InputError

from selfinstruct.dedup_file import Decision, DedupConfig, DedupInputError, Example, decide, dedup_files, read_examples

RNG = random.Random(3)
LONG_OUTPUT = " ".join(RNG.choices([f"w{i}" for i in range(500)], k=120))


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def read_decisions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_decide_runs_rouge_then_minhash_and_grows_the_pool() -> None:
    candidates = [
        Example(instruction="Write a haiku about autumn leaves.", output=LONG_OUTPUT),
        Example(instruction="Write a haiku about autumn leaves!"),  # same tokens: ROUGE-L 1.0
        Example(instruction="Summarise this text in one line.", output=LONG_OUTPUT),  # new wording, same output
        Example(instruction="Name three prime numbers."),
    ]
    decisions = list(decide(candidates, [], DedupConfig()))
    assert [(d.keep, d.reason) for d in decisions] == [(True, None), (False, "rouge"), (False, "minhash"), (True, None)]
    assert decisions[1] == Decision(keep=False, reason="rouge", rouge_l_max=1.0, nearest=candidates[0].instruction)
    assert decisions[2].nearest == candidates[0].instruction


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (("rouge",), [True, False, True, True]),
        (("minhash",), [True, False, False, True]),  # "!" vs "." : same words, so MinHash drops it too
        ((), [True, True, True, True]),
    ],
)
def test_stages_can_be_chosen(stages: tuple[str, ...], expected: list[bool]) -> None:
    candidates = [
        Example(instruction="Write a haiku about autumn leaves.", output=LONG_OUTPUT),
        Example(instruction="Write a haiku about autumn leaves!", output=LONG_OUTPUT),
        Example(instruction="Summarise this text in one line.", output=LONG_OUTPUT),
        Example(instruction="Name three prime numbers."),
    ]
    decisions = list(decide(candidates, [], DedupConfig(stages=stages)))
    assert [d.keep for d in decisions] == expected
    if "rouge" not in stages:
        assert all(d.rouge_l_max == 0.0 for d in decisions)


def test_pool_is_added_first_without_decisions(tmp_path: Path) -> None:
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"instruction": "Translate the sentence into French."}])
    candidates = write_jsonl(
        tmp_path / "candidates.jsonl",
        [
            {"instruction": "Translate the sentence into French", "input": "", "output": "x"},
            {"instruction": "Give me a recipe for pancakes."},
            "",  # blank lines are skipped
            {"instruction": "Give me a recipe for pancakes"},
        ],
    )
    output = tmp_path / "decisions.jsonl"
    counts = dedup_files(candidates, output, pool_path=pool)
    decisions = read_decisions(output)
    assert [d["keep"] for d in decisions] == [False, True, False]
    assert decisions[0] == {
        "keep": False,
        "reason": "rouge",
        "rouge_l_max": 1.0,
        "nearest": "Translate the sentence into French.",
    }
    assert decisions[1]["reason"] is None and decisions[1]["nearest"] is None
    assert counts == {"total": 3, "kept": 1, "dropped_rouge": 2, "dropped_minhash": 0}


def test_threshold_is_rouge_l_f_strictly_above(tmp_path: Path) -> None:
    # m = n = 10, LCS = 7: rouge-score gives exactly 0.7, which is not above 0.7.
    base = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"
    near = "w0 w1 w2 w3 w4 w5 w6 q1 q2 q3"
    candidates = write_jsonl(tmp_path / "c.jsonl", [{"instruction": base}, {"instruction": near}])
    for threshold, kept in ((0.7, True), (0.69, False)):
        dedup_files(candidates, tmp_path / "d.jsonl", threshold=threshold, stages=["rouge"])
        second = read_decisions(tmp_path / "d.jsonl")[1]
        assert (second["keep"], second["rouge_l_max"]) == (kept, 0.7)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": "x"}', "c.jsonl:2: field 'instruction': expected a non-empty string"),
        ('{"instruction": "   "}', "c.jsonl:2: field 'instruction': expected a non-empty string"),
        ('{"instruction": 7}', "c.jsonl:2: field 'instruction': expected a non-empty string"),
        ('{"instruction": "ok", "output": null}', "c.jsonl:2: field 'output': expected a string"),
        ("not json", "c.jsonl:2: expected a JSON object"),
        ('["instruction"]', "c.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_lines_name_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "c.jsonl", [{"instruction": "fine"}, line])
    with pytest.raises(DedupInputError) as info:
        dedup_files("c.jsonl", "d.jsonl")
    assert str(info.value) == message
    assert info.value.line == 2 and isinstance(info.value, InputError)
    assert not (tmp_path / "d.jsonl").exists()  # no partial output
    assert list(tmp_path.iterdir()) == [tmp_path / "c.jsonl"]  # no temp file left behind


def test_bad_pool_line_is_reported_with_the_pool_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "pool.jsonl", [{"instruction": ""}])
    write_jsonl(tmp_path / "c.jsonl", [{"instruction": "fine"}])
    with pytest.raises(DedupInputError, match=r"^pool\.jsonl:1: field 'instruction'"):
        dedup_files("c.jsonl", "d.jsonl", pool_path="pool.jsonl")


def test_existing_output_survives_a_failed_run(tmp_path: Path) -> None:
    output = write_jsonl(tmp_path / "d.jsonl", ["previous"])
    write_jsonl(tmp_path / "c.jsonl", [{"instruction": "fine"}, "broken"])
    with pytest.raises(DedupInputError):
        dedup_files(tmp_path / "c.jsonl", output)
    assert output.read_text() == "previous\n"


def test_read_examples_is_lazy_and_defaults_input_and_output(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"instruction": "a", "extra": 1}, "broken"])
    examples = read_examples(path)
    assert next(examples) == Example(instruction="a")
    with pytest.raises(DedupInputError):
        next(examples)


def test_rejects_unknown_stage() -> None:
    with pytest.raises(ValueError):
        DedupConfig(stages=("rouge", "bloom"))


# Bug (c): ROUGE-L sees only [a-z0-9] tokens, so two identical CJK instructions scored 0 and were both kept; the
# store's UNIQUE instruction then refused the round on every resume. Exact copies (after NFKC, case folding and
# whitespace) are dropped before ROUGE-L, as the ROUGE-L stage's reason with a score of 1.0.
CJK = "请把这句话翻译成英文。"


@pytest.mark.parametrize("copy", [CJK, f"  {CJK} ", "请把这句话翻译成英文。".replace("。", "｡")])
def test_an_exact_copy_without_rouge_tokens_is_dropped(copy: str) -> None:
    decisions = list(decide([Example(instruction=CJK), Example(instruction=copy)], [], DedupConfig()))
    assert [(d.keep, d.reason) for d in decisions] == [(True, None), (False, "rouge")]
    assert decisions[1].nearest == CJK and decisions[1].rouge_l_max == 1.0


def test_the_grow_stage_drops_a_copy_of_a_stored_cjk_instruction(tmp_path: Path) -> None:
    from selfinstruct.core.config import FilterConfig
    from selfinstruct.filters.dedup_stage import DedupStage
    from selfinstruct.core.records import Candidate, Instance, SeedTask
    from selfinstruct.core.store import RoundRecord, Store

    cand = Candidate(instruction=CJK, instances=(Instance(output="Please translate this sentence."),), round=1)
    with Store.open(tmp_path) as store:
        store.add_seeds([SeedTask(id="s", instruction="Say hi.", instances=[Instance(output="Hi")])], "h")
        store.commit_round(RoundRecord(1, [cand]), lambda _: {})
        stage = DedupStage.from_store(FilterConfig(allow_non_ascii_start=True), store)
    assert stage.screen(CJK)[0] == f"1.000 vs {CJK!r}"
    assert stage.check(cand).reason == "rouge"
