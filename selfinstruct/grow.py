"""The grow route: a session over the run directory, the configured teacher, and the Alpaca file kept current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .core.config import GrowConfig
from .export.formats import export_alpaca
from .generate.pipeline import GrowSession, RoundSummary
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


def grow(config: GrowConfig, on_round: Callable[[RoundSummary], None] | None = None) -> GrowResult:
    """Grow the run in `config.out` to `config.target` accepted examples; resumes what is there."""
    with GrowSession(config, publish=export_alpaca) as session:
        rounds = 0
        try:
            if session.wants_round(0):
                with open_teacher(config, session.run_dir) as endpoints:
                    rounds = session.run_rounds(endpoints, on_round)
        finally:  # also on Ctrl-C or a teacher failure: the file shows every committed round
            path = export_alpaca(session.store, session.run_dir)
        store = session.store
        return GrowResult(session.accepted, config.target, rounds, path, store.drop_counts(), session.stopped,
                          session.usage, session.ledger.spent(), store.dead_letter_counts())
