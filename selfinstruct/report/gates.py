"""Quality gates over a run's figures: pass/fail checks the report shows and the CLI can fail a run on.

`RunStats` gathers what a run's card, report and gates read, from the store alone, once: the accepted examples
and their provenance, the rounds' counters, the drop reasons, each instruction's root verb and direct object
(`verbs.py`) and its ROUGE-L to the nearest seed. The gates are plain comparisons of those figures to the limits
in a `GateConfig`; a limit of None turns its gate off.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..core.errors import InputError, SelfInstructError
from ..filters.base import ANSWER_REASONS, INSTANCE_REASONS
from ..filters.rouge import RougeIndex
from ..core.records import AlpacaExample
from ..core.store import STORE_NAME, ConfigEntry, Store
from ..judge.scores import JudgeSummary, judge_summary
from .verbs import verb_object

def rouge_l_to_nearest(texts: Sequence[str], references: Sequence[str]) -> list[float]:
    """Each text's highest ROUGE-L F-measure against `references` (0.0 when there are none), as rouge-score's."""
    index = RougeIndex()
    for reference in references:
        index.add(reference)
    return index.best_scores(texts)


@dataclass(frozen=True)
class RunStats:
    """A run's figures, read from its store once and shared by the dataset card, the report and the gates."""

    run_dir: Path
    config: dict[str, Any]
    seeds_hash: str | None
    seed_instructions: list[str]
    examples: list[AlpacaExample]
    records: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    drops: dict[str, int]
    pairs: list[tuple[str | None, str | None]]
    rouge_to_seed: list[float]
    rows: int = 0  # exported rows: every instance of every accepted task
    version: str = __version__
    # Every configuration that committed rounds, oldest first; `config` is the last of them.
    config_history: tuple[ConfigEntry, ...] = ()
    judge: JudgeSummary | None = None  # the last judge's verdicts, when a judge has scored the run

    @property
    def accepted(self) -> int:
        """Accepted tasks (each exports one row per instance: `rows`)."""
        return len(self.examples)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    @property
    def generated(self) -> int:
        """Candidates the teacher proposed; a run without round stats counts what was kept or dropped."""
        counted = self.total("generated")
        return counted if self.rounds else self.accepted + self.dropped

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.generated if self.generated else None

    @property
    def empty_input_share(self) -> float | None:
        if not self.examples:
            return None
        return sum(1 for example in self.examples if not example.input.strip()) / self.accepted

    @property
    def verb_counts(self) -> Counter[str]:
        return Counter(verb for verb, _ in self.pairs if verb)

    @property
    def distinct_pairs(self) -> int:
        return len({(verb, noun) for verb, noun in self.pairs if verb and noun})

    @property
    def top_verb_share(self) -> tuple[str | None, float | None]:
        """The commonest root verb and its share among instructions whose root verb was found."""
        counts = self.verb_counts
        if not counts:
            return None, None
        verb, count = counts.most_common(1)[0]
        return verb, count / sum(counts.values())

    @property
    def mean_rouge_to_seed(self) -> float | None:
        return statistics.fmean(self.rouge_to_seed) if self.rouge_to_seed else None

    def config_summaries(self) -> list[str]:
        """'rounds 1–4: target 25, backend openai, model m, method self-instruct' per configuration that grew
        the pool, when more than one did."""
        history = self.config_history
        if len(history) < 2:
            return []
        lines = []
        for number, entry in enumerate(history):
            last = history[number + 1].first_round - 1 if number + 1 < len(history) else None
            rounds = f"rounds {entry.first_round}–{last}" if last is not None else f"rounds {entry.first_round} on"
            config = entry.config
            lines.append(f"{rounds}: target {config.get('target', '?')}, backend {config.get('backend', '?')}, "
                         f"model {config.get('model') or 'default'}, method {config.get('method', '?')}")
        return lines

    def total(self, column: str) -> int:
        """Sum of one round counter (requests, cached, failed, prompt_tokens, …) over every round."""
        return sum(int(stats.get(column, 0) or 0) for stats in self.rounds)

    def provenance_value(self, key: str) -> str | None:
        """The commonest value of one provenance field (teacher, backend, method), else the run's config."""
        values = Counter(str(record["provenance"][key]) for record in self.records
                         if record.get("provenance", {}).get(key) is not None)
        if values:
            return values.most_common(1)[0][0]
        fallback = {"teacher": "model"}.get(key, key)
        value = self.config.get(fallback)
        return None if value is None else str(value)


def collect_stats(run_dir: Path) -> RunStats:
    """Read everything the card, report and gates need from `run_dir`'s store."""
    if not (run_dir / STORE_NAME).is_file():
        raise InputError(str(run_dir), None, f"a run directory holding {STORE_NAME}", "no store there")
    with Store.open(run_dir) as store:
        history = tuple(store.config_history())
        examples = store.accepted_examples(instances=1)  # one per task: verbs, diversity and ROUGE-L are per task
        seeds = store.instructions("seed")
        return RunStats(
            run_dir=run_dir, config=history[-1].config if history else {}, config_history=history,
            seeds_hash=store.get_meta("seeds_hash"), seed_instructions=seeds, examples=examples,
            rows=len(store.example_rows()),
            records=store.generated_records(), rounds=store.round_stats(), drops=store.drop_counts(),
            pairs=[verb_object(example.instruction) for example in examples],
            rouge_to_seed=rouge_l_to_nearest([example.instruction for example in examples], seeds),
            judge=judge_summary(store),
        )


class GateConfig(BaseModel):
    """Limits a run must meet; None turns a gate off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_acceptance_rate: float | None = Field(
        0.1, ge=0, le=1, description="accepted / generated; below it the teacher or the filters are off")
    max_top_verb_share: float | None = Field(
        0.3, gt=0, le=1, description="share of the commonest root verb among instructions with one")
    max_empty_input_share: float | None = Field(0.8, ge=0, le=1, description="share of examples with no input")
    min_distinct_root_verbs: int | None = Field(10, ge=1)
    max_mean_rouge_l_to_seed: float | None = Field(
        0.5, gt=0, le=1, description="mean ROUGE-L of each instruction to its nearest seed: copying the seeds")
    max_failed_request_share: float | None = Field(0.2, ge=0, le=1, description="dead-lettered / sent requests")
    max_answer_check_share: float | None = Field(
        0.5, ge=0, le=1, description="answers dropped by the instance filters and answer checks / answers that "
                                     "reached them: above it the teacher's answers are mostly junk")
    min_mean_judge_score: float | None = Field(
        3.0, ge=1, le=5, description="mean score the judge gave the rows it scored (1-5); listed once a judge has "
                                     "scored the run (`selfinstruct judge`)")
    min_examples: int = Field(
        20, ge=0, description="below this many accepted examples (judged rows, for the judge's gate) the share, "
                              "diversity and judge gates are not judged")


class GateResult(BaseModel):
    """One gate's verdict, with the measured value and the limit it was held to."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    value: float | None
    limit: float | None
    message: str


class GateError(SelfInstructError):
    """The run failed one or more quality gates."""

    def __init__(self, failed: list[GateResult]):
        self.failed = failed
        super().__init__("quality gates failed: " + "; ".join(result.message for result in failed))


def _judge(name: str, value: float | None, limit: float, at_least: bool, what: str) -> GateResult:
    if value is None:
        return GateResult(name=name, passed=True, value=None, limit=limit, message=f"{what}: nothing to measure yet")
    passed = value >= limit if at_least else value <= limit
    relation = ("≥" if at_least else "≤") if passed else ("<" if at_least else ">")
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    return GateResult(name=name, passed=passed, value=value, limit=limit,
                      message=f"{what} {shown} {relation} {limit:g}")


def _skipped(name: str, limit: float, stats: RunStats, config: GateConfig) -> GateResult:
    return GateResult(name=name, passed=True, value=None, limit=limit,
                      message=f"{name}: not judged on {stats.accepted} examples (fewer than {config.min_examples})")


def answer_check_drops(stats: RunStats) -> int:
    """Candidates or instances dropped by the instance filters and answer checks."""
    return sum(stats.drops.get(reason, 0) for reason in (*INSTANCE_REASONS, *ANSWER_REASONS))


def _answer_check_share(stats: RunStats) -> float | None:
    dropped = answer_check_drops(stats)
    return dropped / (dropped + stats.rows) if dropped + stats.rows else None


def _failed_share(stats: RunStats) -> float | None:
    requests = stats.total("requests")
    return stats.total("failed") / requests if requests else None


def evaluate_gates(source: Path | RunStats, config: GateConfig | None = None) -> list[GateResult]:
    """Judge every enabled gate on a run directory or its already collected stats."""
    stats = source if isinstance(source, RunStats) else collect_stats(source)
    config = config or GateConfig()
    # (name, limit, value, at_least, what, needs enough examples)
    checks: list[tuple[str, float | None, float | None, bool, str, bool]] = [
        ("min_acceptance_rate", config.min_acceptance_rate, stats.acceptance_rate, True, "acceptance rate", False),
        ("max_failed_request_share", config.max_failed_request_share, _failed_share(stats), False,
         "failed request share", False),
        ("max_answer_check_share", config.max_answer_check_share, _answer_check_share(stats), False,
         "share of answers dropped by the answer checks", True),
        ("max_top_verb_share", config.max_top_verb_share, stats.top_verb_share[1], False,
         f"share of the top root verb ({stats.top_verb_share[0]})", True),
        ("max_empty_input_share", config.max_empty_input_share, stats.empty_input_share, False,
         "share of empty inputs", True),
        ("min_distinct_root_verbs", config.min_distinct_root_verbs, len(stats.verb_counts), True,
         "distinct root verbs", True),
        ("max_mean_rouge_l_to_seed", config.max_mean_rouge_l_to_seed, stats.mean_rouge_to_seed, False,
         "mean ROUGE-L to the nearest seed", True),
    ]
    results = []
    for name, limit, value, at_least, what, needs_examples in checks:
        if limit is None:
            continue
        if needs_examples and stats.accepted < config.min_examples:
            results.append(_skipped(name, limit, stats, config))
        else:
            results.append(_judge(name, value, limit, at_least, what))
    if stats.judge is not None and config.min_mean_judge_score is not None:
        results.append(_judge_gate(stats.judge, config.min_mean_judge_score, config.min_examples))
    return results


def _judge_gate(judge: JudgeSummary, limit: float, min_examples: int) -> GateResult:
    """The judge's mean score: only over the rows it scored, and only once it has scored enough of them."""
    name = "min_mean_judge_score"
    if len(judge.judged) < min_examples:
        return GateResult(name=name, passed=True, value=None, limit=limit,
                          message=f"{name}: not judged on {len(judge.judged)} scored rows (fewer than {min_examples})")
    return _judge(name, judge.mean, limit, True, f"mean judge score ({judge.judge_model}, {judge.rubric_version})")


def failed_gates(results: list[GateResult]) -> list[GateResult]:
    return [result for result in results if not result.passed]


def enforce_gates(results: list[GateResult]) -> None:
    """Raise GateError naming every failed gate; the CLI maps it to an exit code."""
    failed = failed_gates(results)
    if failed:
        raise GateError(failed)
