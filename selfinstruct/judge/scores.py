"""The judgements as exports, cards and reports read them: per row, summed up, and as a `--min-score` selection.

Exports and reports read the judgements of one judge: the (judge model, rubric version) that judged last
(`Store.latest_judge`); the others stay in the store. A `--min-score` export records its selection in the
store's meta (EXPORT_FILTER_KEY), so every later writer of the run's files (a grow's alpaca_data.json) and
`verify` apply the same one, until an export without `--min-score` clears it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import InputError
from ..core.records import ExampleRow, Judgement, JudgeTarget
from ..core.store import Store, task_row_key

EXPORT_FILTER_KEY = "export_filter"
NOT_JUDGED = "not judged by this judge yet"


class ScoreFilter(BaseModel):
    """`export --min-score`: keep rows scored at least `min_score`; unjudged rows only with `keep_unjudged`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_score: int = Field(ge=1, le=5)
    keep_unjudged: bool = False


@dataclass(frozen=True)
class Selection:
    """What a `--min-score` export kept and left out, for the command's message and the card."""

    min_score: int
    keep_unjudged: bool
    kept: int
    below: int
    unjudged: int  # rows with no score from the judge (never judged, or unjudged): left out unless keep_unjudged
    judge_model: str
    rubric_version: str

    @property
    def total(self) -> int:
        return self.kept + self.below + (0 if self.keep_unjudged else self.unjudged)

    def describe(self) -> str:
        unjudged = (f"{self.unjudged} unjudged kept" if self.keep_unjudged else f"{self.unjudged} unjudged left "
                    "out (judge them with `selfinstruct judge`, or pass --keep-unjudged)")
        return (f"kept {self.kept} of {self.total} rows scored ≥ {self.min_score} by {self.judge_model} "
                f"({self.rubric_version}); {self.below} below {self.min_score}; {unjudged}")


def with_judgements(rows: list[ExampleRow], judgements: list[Judgement]) -> list[ExampleRow]:
    """`rows` with the judge's verdict in each grown row's provenance (score, judge_reason, tags, judge)."""
    by_row = {(j.task_id, j.instance): j for j in judgements}
    if not by_row:
        return rows
    model, version = judgements[-1].judge_model, judgements[-1].rubric_version
    out = []
    for row in rows:
        key = task_row_key(row)
        if key is None:
            out.append(row)
            continue
        found = by_row.get(key)
        verdict = {"score": found.score if found else None,
                   "judge_reason": found.reason if found else NOT_JUDGED,
                   "category": found.category if found else None,
                   "difficulty": found.difficulty if found else None,
                   "judge_model": model, "rubric_version": version}
        out.append(row.model_copy(update={"provenance": row.provenance | verdict}))
    return out


def select_min_score(rows: list[ExampleRow], rule: ScoreFilter, judge: tuple[str, str]) -> tuple[list[ExampleRow],
                                                                                              Selection]:
    """The rows `rule` keeps, from rows carrying their verdict (`with_judgements`), with the counts."""
    kept, below, unjudged = [], 0, 0
    for row in rows:
        score = row.provenance.get("score")
        if score is None:
            unjudged += 1
            if rule.keep_unjudged:
                kept.append(row)
        elif int(score) >= rule.min_score:
            kept.append(row)
        else:
            below += 1
    return kept, Selection(rule.min_score, rule.keep_unjudged, len(kept), below, unjudged, *judge)


def recorded_filter(store: Store) -> ScoreFilter | None:
    text = store.get_meta(EXPORT_FILTER_KEY)
    return None if text is None else ScoreFilter.model_validate_json(text)


def exported_rows(store: Store, instances: int | None = None, rule: ScoreFilter | None = None,
                  recorded: bool = True) -> tuple[list[ExampleRow], Selection | None]:
    """The rows a run's files hold: every row with its verdict, then the score filter (`rule`, else with
    `recorded` the one the last export recorded). With a filter but no judgements, an InputError naming
    `selfinstruct judge`."""
    rows = store.example_rows(instances)
    judge = store.latest_judge()
    if judge is not None:
        rows = with_judgements(rows, store.judgements(*judge))
    if rule is None and recorded:
        rule = recorded_filter(store)
    if rule is None:
        return rows, None
    if judge is None:
        raise InputError(str(store.path.parent), "--min-score",
                         "judged rows: run `selfinstruct judge --out DIR` first", "no judgements in the store")
    return select_min_score(rows, rule, judge)


def record_filter(store: Store, rule: ScoreFilter | None) -> None:
    """Remember the export's selection for the run's later writers and `verify`; None forgets it."""
    if rule is None:
        store.delete_meta(EXPORT_FILTER_KEY)
    else:
        store.set_meta(EXPORT_FILTER_KEY, rule.model_dump_json())


@dataclass(frozen=True)
class ScoredRow:
    target: JudgeTarget
    judgement: Judgement


@dataclass(frozen=True)
class JudgeSummary:
    """One judge's verdicts on a run, for the card, the report and the gate."""

    judge_model: str
    rubric_version: str
    rows: int  # grown rows in the run
    judged: list[ScoredRow]
    unjudged: list[ScoredRow]  # recorded without a score (the reply was unusable twice)
    other_judges: list[tuple[str, str, int]] = field(default_factory=list)  # (model, version, scored rows)
    selection: ScoreFilter | None = None  # the score filter the run's files follow, if any

    @property
    def not_judged(self) -> int:
        return self.rows - len(self.judged) - len(self.unjudged)

    @property
    def distribution(self) -> dict[int, int]:
        counts = Counter(item.judgement.score for item in self.judged)
        return {score: counts.get(score, 0) for score in range(1, 6)}

    @property
    def mean(self) -> float | None:
        scores = [item.judgement.score for item in self.judged if item.judgement.score is not None]
        return statistics.fmean(scores) if scores else None

    def by_category(self) -> dict[str, list[int]]:
        """Scores per category, commonest category first (None: the judge gave none)."""
        table: dict[str, list[int]] = {}
        for item in self.judged:
            table.setdefault(item.judgement.category or "(none)", []).append(item.judgement.score or 0)
        return dict(sorted(table.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def difficulties(self) -> dict[str, int]:
        counts = Counter(item.judgement.difficulty or "(none)" for item in self.judged)
        return dict(counts.most_common())

    def lowest(self, count: int) -> list[ScoredRow]:
        """The `count` lowest-scored rows, lowest first (ties in row order)."""
        return sorted(self.judged, key=lambda item: item.judgement.score or 0)[:count]

    def unjudged_reasons(self) -> dict[str, int]:
        return dict(Counter(item.judgement.reason for item in self.unjudged).most_common())


def judge_summary(store: Store) -> JudgeSummary | None:
    """The last judge's verdicts on the run's grown rows; None when no row was ever judged."""
    judge = store.latest_judge()
    if judge is None:
        return None
    targets = {(target.task_id, target.instance): target for target in store.judge_targets()}
    judged, unjudged = [], []
    for judgement in store.judgements(*judge):
        target = targets.get((judgement.task_id, judgement.instance))
        if target is not None:
            (judged if judgement.judged else unjudged).append(ScoredRow(target, judgement))
    others = Counter((j.judge_model, j.rubric_version) for j in store.judgements() if j.judged)
    others.pop(judge, None)
    return JudgeSummary(judge[0], judge[1], len(targets), judged, unjudged,
                        [(model, version, count) for (model, version), count in sorted(others.items())],
                        recorded_filter(store))
