"""Grow the pool: seeds → prompts → teacher → parse → filters → store → export.

`GrowSession` holds the run's store and in-memory indexes (caches rebuilt from
the store); `run_round` does one round and commits it in one transaction.
The CLI and the Prefect flow are thin loops over it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import GrowConfig
from .errors import ConfigError, TeacherError
from .export import export_alpaca
from .filters.base import EMPTY_OUTPUT, ROUGE, TEACHER_FAILED
from .filters.heuristics import check_instruction, instruction_checks
from .filters.dedup_stage import DedupStage
from .lock import RunLock
from .methods import (
    PromptPlan, classify_request, instance_request, plan_alpaca, plan_self_instruct, read_classification,
    read_generation, read_instances,
)
from .records import Candidate, Rejection, SeedTask
from .seeds import load_seeds
from .store import RoundRecord, Store
from .teacher.cache import CachedTeacher, Usage
from .teacher.openai_compat import OpenAITeacher
from .teacher.registry import Endpoints, open_teacher

log = logging.getLogger(__name__)

MAX_IDLE_ROUNDS = 25  # rounds in a row without a new example before we call the teacher stuck


@dataclass
class RoundSummary:
    """What one round did, for progress bars, logs and Prefect artifacts."""

    round: int
    generated: int
    kept: int
    dropped: dict[str, int]
    accepted_total: int
    target: int
    usage: Usage
    seconds: float

    def as_stats(self) -> dict[str, object]:
        return {
            "round": self.round, "generated": self.generated, "kept": self.kept, "dropped": self.dropped,
            "accepted_total": self.accepted_total, "requests": self.usage.requests, "cached": self.usage.cached,
            "failed": self.usage.failed, "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens, "seconds": round(self.seconds, 3),
        }


@dataclass
class _Round:
    number: int
    accepted: list[Candidate] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    generated: int = 0

    def reject(self, candidate: Candidate, reason: str, detail: str = "") -> None:
        self.rejections.append(Rejection(candidate=candidate, reason=reason, detail=detail))


def seeds_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class GrowSession:
    """An open run directory: store, seeds, and the indexes rebuilt from it."""

    def __init__(self, config: GrowConfig):
        self.config = config
        self.run_dir = config.out
        # Validate the seed file before touching the run directory, so bad input leaves it as it was.
        seeds = load_seeds(config.seeds)
        digest = seeds_hash(config.seeds)
        self._lock = RunLock(self.run_dir)
        self._lock.acquire()
        try:
            self.store = Store.open(self.run_dir)
            self._check_seeds(seeds, digest)
        except BaseException:
            self._lock.release()
            raise
        self.seeds = self.store.seed_tasks()
        self.store.set_meta("config", config.model_dump_json())
        self.checks = instruction_checks(config.filters)
        self.dedup = DedupStage.from_store(config.filters, self.store)
        self.machine = self.store.instructions("generated")
        self.idle_rounds = 0

    def _check_seeds(self, seeds: list[SeedTask], digest: str) -> None:
        stored = self.store.get_meta("seeds_hash")
        if stored is None:
            self.store.add_seeds(seeds, digest)
        elif digest != stored:
            self.store.close()
            raise ConfigError(
                str(self.config.seeds), "seeds",
                f"the seed file this run started from (sha256 {stored[:12]}); use a new --out for other seeds",
                f"sha256 {digest[:12]}",
            )

    @property
    def accepted(self) -> int:
        return len(self.machine)

    def done(self) -> bool:
        return self.accepted >= self.config.target

    def wants_round(self, rounds_run: int) -> bool:
        """Another round, unless the target is reached or this run's round budget is spent."""
        return not self.done() and (self.config.max_rounds is None or rounds_run < self.config.max_rounds)

    def close(self) -> None:
        self.store.close()
        self._lock.release()

    def __enter__(self) -> "GrowSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_round(self, endpoints: Endpoints) -> RoundSummary:
        """One round, committed; then the Alpaca file is rewritten."""
        summary = asyncio.run(self._run_round_async(endpoints))
        export_alpaca(self.store, self.run_dir)
        self.idle_rounds = 0 if summary.kept else self.idle_rounds + 1
        if self.idle_rounds >= MAX_IDLE_ROUNDS:
            raise TeacherError(
                f"no new example was accepted in {MAX_IDLE_ROUNDS} rounds in a row; the teacher's replies "
                f"are unusable (see drop reasons with `selfinstruct report`, or the replies table in the store)"
            )
        return summary

    async def _run_round_async(self, endpoints: Endpoints) -> RoundSummary:
        started = time.perf_counter()
        teacher = OpenAITeacher(
            base_urls=endpoints.base_urls, model=endpoints.model, api=self.config.api, api_key=endpoints.api_key,
            timeout=self.config.request_timeout, max_attempts=self.config.max_attempts,
            concurrency=self.config.concurrency,
        )
        asker = CachedTeacher(teacher, self.store)
        current = _Round(number=self.store.next_round())
        try:
            candidates = await self._generate(asker, current)
            if self.config.method == "self-instruct":
                candidates = await self._complete_tasks(asker, candidates, current)
        finally:
            await teacher.close()
        try:
            self._final_pass(candidates, current)
        except BaseException:
            # Kept items joined the indexes before the commit; rebuild them from the store.
            self.dedup = DedupStage.from_store(self.config.filters, self.store)
            raise
        summary = RoundSummary(
            round=current.number, generated=current.generated, kept=len(current.accepted),
            dropped=dict(Counter(rej.reason for rej in current.rejections)),
            accepted_total=self.accepted + len(current.accepted), target=self.config.target,
            usage=asker.usage, seconds=time.perf_counter() - started,
        )
        record = RoundRecord(current.number, current.accepted, current.rejections, summary.as_stats())
        try:
            self.store.commit_round(record, self._provenance(endpoints))
        except BaseException:
            self.dedup = DedupStage.from_store(self.config.filters, self.store)
            raise
        self.machine += [cand.instruction for cand in current.accepted]
        return summary

    def _plans(self, round_no: int) -> list[PromptPlan]:
        if self.config.method == "alpaca":
            return plan_alpaca(self.config, self.seeds, round_no)
        return plan_self_instruct(self.config, self.seeds, self.machine, round_no)

    async def _generate(self, asker: CachedTeacher, current: _Round) -> list[Candidate]:
        """Generation requests → parsed candidates that pass the text checks and the pool's ROUGE-L."""
        plans = self._plans(current.number)
        replies = await asker.ask_all([plan.request for plan in plans])
        candidates: list[Candidate] = []
        for plan, reply in zip(plans, replies):
            if reply is None:
                continue
            parsed, cut = read_generation(plan, reply, current.number)
            current.rejections += cut
            current.generated += len(parsed) + len(cut)
            candidates += parsed
        survivors = []
        for cand in candidates:
            verdict = check_instruction(cand.instruction, self.checks)
            if not verdict.keep:
                current.reject(cand, verdict.reason or "", verdict.detail)
            elif (match := self.dedup.rouge_duplicate(cand.instruction)) is not None:
                current.reject(cand, ROUGE, match)
            else:
                survivors.append(cand)
        return survivors

    async def _complete_tasks(self, asker: CachedTeacher, candidates: list[Candidate],
                              current: _Round) -> list[Candidate]:
        """Self-Instruct: classify each instruction, then generate its instances."""
        labels = await asker.ask_all([classify_request(self.config, c.instruction) for c in candidates])
        candidates = [c.model_copy(update={"is_classification": read_classification(r)})
                      for c, r in zip(candidates, labels)]
        replies = await asker.ask_all([instance_request(self.config, c) for c in candidates])
        completed = []
        for cand, reply in zip(candidates, replies):
            if reply is None:
                current.reject(cand, TEACHER_FAILED, "instance request failed")
            else:
                completed.append(read_instances(cand, reply, self.config.instances_per_task))
        return completed

    def _final_pass(self, candidates: list[Candidate], current: _Round) -> None:
        """In order, as the paper's loop: each kept candidate joins the pool at once."""
        room = self.config.target - self.accepted
        for cand in candidates:
            if len(current.accepted) >= room:
                break  # the target is reached; the rest of the round is surplus
            if not cand.instances:
                current.reject(cand, EMPTY_OUTPUT)
                continue
            verdict = self.dedup.check(cand)
            if verdict.reason is not None:
                current.reject(cand, verdict.reason, verdict.detail)
                continue
            self.dedup.add(cand)
            current.accepted.append(
                cand.model_copy(update={"nearest": verdict.nearest, "nearest_rouge_l": verdict.nearest_rouge_l})
            )

    def _provenance(self, endpoints: Endpoints) -> Callable[[Candidate], dict[str, object]]:
        def provenance(cand: Candidate) -> dict[str, object]:
            return {
                "teacher": endpoints.model, "backend": self.config.backend, "method": self.config.method,
                "round": cand.round, "demo_ids": list(cand.demo_ids), "prompt_hash": cand.prompt_hash,
                "is_classification": cand.is_classification,
                "nearest": cand.nearest, "nearest_rouge_l": cand.nearest_rouge_l,
            }
        return provenance


@dataclass(frozen=True)
class GrowResult:
    accepted: int
    target: int
    rounds: int
    alpaca_path: Path
    drops: dict[str, int]


def grow(config: GrowConfig, on_round: Callable[[RoundSummary], None] | None = None) -> GrowResult:
    """Grow the run in `config.out` to `config.target` accepted examples; resumes what is there."""
    with GrowSession(config) as session:
        rounds = 0
        if not session.done():
            with open_teacher(config, session.run_dir) as endpoints:
                while session.wants_round(rounds):
                    summary = session.run_round(endpoints)
                    rounds += 1
                    if on_round:
                        on_round(summary)
        path = export_alpaca(session.store, session.run_dir)
        return GrowResult(session.accepted, config.target, rounds, path, session.store.drop_counts())
