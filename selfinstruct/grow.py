"""The grow route: a session over the run directory, the configured teacher, and the Alpaca file kept current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .core.config import GrowConfig
from .export.formats import export_alpaca
from .generate.pipeline import GrowSession, RoundSummary
from .core.errors import InputError
from .core.lock import RunLock
from .core.store import STORE_NAME, Store
from .judge.run import JudgeResult, judge_store
from .judge.scores import recorded_filter
from .teacher.budget import Spent
from .teacher.registry import open_teacher
from .teacher.usage import Usage


@dataclass(frozen=True)
class GrowResult:
    accepted: int
    target: int
    rounds: int
    alpaca_path: Path
    drops: dict[str, int]
    stopped: str = ""
    usage: Usage = field(default_factory=Usage)  # this run's requests
    spent: Spent | None = None  # the run directory's totals
    dead_letters: dict[str, int] = field(default_factory=dict)  # the run directory's, by error class
    judged: JudgeResult | None = None  # with judge.enabled: the judge's run after the grow


def grow(config: GrowConfig, on_round: Callable[[RoundSummary], None] | None = None,
         on_judged: Callable[[int, int], None] | None = None) -> GrowResult:
    """Grow the run in `config.out` to `config.target` accepted examples; resumes what is there.

    With `judge.enabled`, the judge then scores the rows it has not scored yet. After the grow, not as rounds
    commit: the judge is a second model, and on one machine (the cpu backend) the two would share its cores;
    the teacher's server is stopped before the judge's starts. A grow stopped by Ctrl-C or a failure judges
    nothing; the next `grow --judge` (or `selfinstruct judge`) judges every row left.
    """
    with GrowSession(config, publish=export_alpaca) as session:
        rounds = 0
        try:
            if session.wants_round(0):
                with open_teacher(config, session.run_dir) as endpoints:
                    rounds = session.run_rounds(endpoints, on_round)
        finally:  # also on Ctrl-C or a teacher failure: the file shows every committed round
            path = export_alpaca(session.store, session.run_dir)
        judged = None
        if config.judge.enabled and session.accepted:
            judged = judge_store(config, session.store, session.run_dir, on_judged)
            path = export_alpaca(session.store, session.run_dir)  # a recorded --min-score selection reads the scores
        store = session.store
        return GrowResult(session.accepted, config.target, rounds, path, store.drop_counts(), session.stopped,
                          session.usage, session.ledger.spent(), store.dead_letter_counts(), judged)



def judge(config: GrowConfig, on_judged: Callable[[int, int], None] | None = None) -> JudgeResult:
    """`selfinstruct judge`: score the rows of the run in `config.out` its judge has not scored (the run is locked
    against a grow meanwhile); alpaca_data.json is rewritten when a `--min-score` selection is recorded, since
    new scores change what it keeps."""
    run_dir = config.out
    if not (run_dir / STORE_NAME).is_file():
        raise InputError(str(run_dir), None, f"a run directory holding {STORE_NAME}", "no store there")
    with RunLock(run_dir), Store.open(run_dir) as store:
        try:
            return judge_store(config, store, run_dir, on_judged)
        finally:  # also when a budget or a failure stopped it: the file follows every score stored
            if recorded_filter(store) is not None:
                export_alpaca(store, run_dir)
