"""Quality gates: each gate on crafted figures, the exact verdict, and ROUGE-L to the seeds against rouge-score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from selfinstruct.core.errors import InputError, SelfInstructError
from selfinstruct.report.gates import (
    GateConfig, GateError, RunStats, collect_stats, enforce_gates, evaluate_gates, failed_gates, rouge_l_to_nearest,
)
from selfinstruct.core.records import AlpacaExample, Candidate, Instance, SeedTask
from selfinstruct.core.store import RoundRecord, Store

ONLY = {name: None for name in GateConfig.model_fields if name != "min_examples"}


def _stats(n: int = 40, *, generated: int | None = None, verbs: list[str] | None = None, empty: int = 0,
           rouge: float = 0.2, requests: int = 10, failed: int = 0) -> RunStats:
    """Figures of a run of n examples: `verbs` cycles over the instructions, the first `empty` have no input."""
    verbs = verbs or [f"verb{i}" for i in range(n)]
    examples = [AlpacaExample(instruction=f"Task {i}.", input="" if i < empty else "x", output="y") for i in range(n)]
    rounds = [{"round": 1, "generated": n if generated is None else generated, "kept": n, "requests": requests,
               "failed": failed, "seconds": 1.0}]
    return RunStats(run_dir=Path("run"), config={}, seeds_hash=None, seed_instructions=[], examples=examples,
                    records=[], rounds=rounds, drops={}, pairs=[(verbs[i % len(verbs)], "thing") for i in range(n)],
                    rouge_to_seed=[rouge] * n)


def _gate(stats: RunStats, **limits: float) -> tuple[bool, float | None]:
    [result] = evaluate_gates(stats, GateConfig(**(ONLY | limits)))
    return result.passed, result.value


@pytest.mark.parametrize(("stats", "limits", "passed", "value"), [
    (_stats(40, generated=400), {"min_acceptance_rate": 0.1}, True, 0.1),  # exactly at the limit passes
    (_stats(39, generated=400), {"min_acceptance_rate": 0.1}, False, 39 / 400),
    (_stats(40, verbs=["write"] * 3 + ["give"]), {"max_top_verb_share": 0.75}, True, 0.75),
    (_stats(40, verbs=["write"] * 4 + ["give"]), {"max_top_verb_share": 0.75}, False, 0.8),
    (_stats(40, empty=32), {"max_empty_input_share": 0.8}, True, 0.8),
    (_stats(40, empty=33), {"max_empty_input_share": 0.8}, False, 33 / 40),
    (_stats(40, verbs=[f"v{i}" for i in range(10)]), {"min_distinct_root_verbs": 10}, True, 10),
    (_stats(40, verbs=[f"v{i}" for i in range(9)]), {"min_distinct_root_verbs": 10}, False, 9),
    (_stats(40, rouge=0.6), {"max_mean_rouge_l_to_seed": 0.5}, False, 0.6),
    (_stats(40, requests=10, failed=3), {"max_failed_request_share": 0.2}, False, 0.3),
    (_stats(40, requests=0), {"max_failed_request_share": 0.2}, True, None),  # nothing sent, nothing to judge
])
def test_each_gate(stats: RunStats, limits: dict[str, float], passed: bool, value: float | None) -> None:
    assert _gate(stats, **limits) == (passed, pytest.approx(value) if value is not None else None)


def test_share_gates_wait_for_enough_examples() -> None:
    # Five examples with one verb would fail every diversity gate; that says nothing about the teacher yet.
    stats = _stats(5, verbs=["write"], empty=5)
    results = evaluate_gates(stats, GateConfig(min_examples=20))
    assert not failed_gates(results)
    assert {r.name for r in results if r.value is None} >= {"max_top_verb_share", "max_empty_input_share"}


def test_none_turns_a_gate_off_and_defaults_are_all_on() -> None:
    assert evaluate_gates(_stats(), GateConfig(**ONLY)) == []
    # The judge's gate is listed once a judge has scored the run (tests/test_judge.py).
    assert {r.name for r in evaluate_gates(_stats())} == set(ONLY) - {"min_mean_judge_score"}


def test_enforce_gates_names_every_failure() -> None:
    results = evaluate_gates(_stats(40, generated=1000, verbs=["write"]))
    with pytest.raises(GateError) as caught:
        enforce_gates(results)
    assert isinstance(caught.value, SelfInstructError)
    assert {r.name for r in caught.value.failed} == {"min_acceptance_rate", "max_top_verb_share",
                                                      "min_distinct_root_verbs"}
    assert "acceptance rate 0.04 < 0.1" in str(caught.value)
    enforce_gates(evaluate_gates(_stats()))  # passing gates raise nothing


def test_rouge_to_nearest_matches_rouge_score() -> None:
    seeds = ["Name three fruits.", "Write a haiku about rain in the city.", "Translate the sentence into French!"]
    texts = ["Name three red fruits.", "write a HAIKU about rain", "Compose a limerick.", "", "!!", "fruits fruits"]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    expected = [max(scorer.score(seed, text)["rougeL"].fmeasure for seed in seeds) for text in texts]
    assert rouge_l_to_nearest(texts, seeds) == pytest.approx(expected, abs=1e-12)
    assert rouge_l_to_nearest(texts, []) == [0.0] * len(texts)


def test_rouge_to_the_nearest_seed_is_rouge_scores_bit_for_bit_at_the_threshold() -> None:
    # 8 and 12 tokens sharing 7 in order: 2·7/20 is 0.7 exactly, but rouge-score's 2PR/(P+R) gives
    # 0.7000000000000001, above the dedup threshold. The gates once used the first formula; they now use the
    # dedup index's arithmetic, so the report and the filter agree on which pairs pass 0.7.
    text, seed = "a b c d e f g h", "a b c d e f g x y z w v"
    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(seed, text)["rougeL"].fmeasure
    assert expected > 0.7
    assert rouge_l_to_nearest([text], [seed]) == [expected]
    assert rouge_l_to_nearest(["", "一二三", text], [seed, ""]) == [0.0, 0.0, expected]


def test_collect_stats_reads_the_store(tmp_path: Path) -> None:
    seeds = [SeedTask(id="s0", instruction="Write a poem about the sea.", instances=[Instance(output="Waves.")])]
    accepted = [Candidate(instruction=text, instances=(Instance(output="ok"),), round=1)
                for text in ("Write a poem about the sea today.", "Give me a list of fruits.", "Why is the sky blue?")]
    with Store.open(tmp_path) as store:
        store.add_seeds(seeds, "abc")
        store.set_meta("config", json.dumps({"model": "teacher-x"}))
        store.commit_round(RoundRecord(1, accepted, [], {"round": 1, "generated": 6, "kept": 3}), lambda c: {})
    stats = collect_stats(tmp_path)
    assert (stats.accepted, stats.generated, stats.acceptance_rate) == (3, 6, 0.5)
    assert stats.pairs == [("write", "poem"), ("give", "list"), (None, None)]
    assert stats.rouge_to_seed[0] == pytest.approx(2 * 6 / (7 + 6))  # LCS 6 of 7 and 6 tokens
    assert stats.provenance_value("teacher") == "teacher-x"  # no provenance stored: the config's model


def test_collect_stats_refuses_a_directory_without_a_store(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        collect_stats(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_answer_check_share_gate_counts_answer_drops_against_kept_rows(tmp_path: Path) -> None:
    from selfinstruct.filters.base import ANSWER_REFUSAL, INSTANCE_INPUT_IS_OUTPUT, ROUGE
    from selfinstruct.report.gates import GateConfig, collect_stats, evaluate_gates
    from selfinstruct.core.records import Candidate, Instance, Rejection
    from selfinstruct.core.store import RoundRecord, Store

    kept = [Candidate(instruction=f"Write a short note number {i} to a neighbour.",
                      instances=(Instance(output=f"Hello {i}."),)) for i in range(30)]
    junk = [Rejection(candidate=Candidate(instruction=f"Task {i}"), reason=ANSWER_REFUSAL) for i in range(20)]
    junk += [Rejection(candidate=Candidate(instruction="Echo"), reason=INSTANCE_INPUT_IS_OUTPUT)] * 10
    other = [Rejection(candidate=Candidate(instruction="Near copy"), reason=ROUGE)] * 50  # not an answer check
    with Store.open(tmp_path) as store:
        store.commit_round(RoundRecord(1, kept, junk + other, {"round": 1, "generated": 110, "kept": 30}),
                           lambda cand: {})
    stats = collect_stats(tmp_path)
    gate = {result.name: result for result in evaluate_gates(stats, GateConfig(min_examples=1))}
    assert gate["max_answer_check_share"].value == 30 / 60 and gate["max_answer_check_share"].passed
    strict = {r.name: r for r in evaluate_gates(stats, GateConfig(min_examples=1, max_answer_check_share=0.4))}
    assert not strict["max_answer_check_share"].passed
