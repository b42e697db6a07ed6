"""Grow the pool: seeds → prompts → teacher → parse → filters → store → export.

`GrowSession` holds the run's store and in-memory indexes (caches rebuilt from the store). Rounds are
pipelined: up to `pipeline_rounds` rounds have requests in flight (each streams its stages, see
`rounds.py`), and they commit in order, each in one transaction, after a final pass that decides in a
fixed order. Round N shows machine demos accepted by round N - pipeline_rounds, which are committed
before it starts, so a re-run of a crashed round renders the same prompts and finds its stored answers.
The grow route (`selfinstruct.grow`) runs a session to its target; the Prefect flow calls `run_rounds` a few
minutes at a time.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..teacher.budget import Ledger, Spent, check_cost_budget
from ..core.config import GrowConfig
from ..core.errors import ConfigError, TeacherError
from ..filters.base import EMPTY_OUTPUT, MINHASH
from ..filters.heuristics import instruction_checks
from ..filters.dedup_stage import DedupStage
from ..filters.minhash import Sketched
from ..core.lock import RunLock
from .methods import PromptPlan, plan_alpaca, plan_self_instruct
from ..core.records import Candidate, Rejection, SeedTask
from .rounds import CollectedRound, RoundStream
from ..core.seeds import load_seeds
from ..core.store import RoundRecord, Store
from ..core.teacher_records import TeacherReply
from ..teacher.cache import CachedTeacher, ReplyWriter, Usage
from ..teacher.base import Teacher
from ..teacher.batch import batch_teacher
from ..teacher.adaptive import AimdLimit
from ..teacher.openai_compat import LLAMA_CPP_PYTHON, OPENAI_SCHEMA, OpenAITeacher
from ..teacher.backend import Endpoints

log = logging.getLogger(__name__)

MAX_IDLE_ROUNDS = 25  # rounds in a row without a new example before we call the teacher stuck
RECENT_ROUNDS = 20  # rounds whose yield predicts the next ones' (to stop starting rounds near the target)
# alpaca_data.json is rewritten whole (O(pool)); pipelined rounds commit several times a second, so the
# file follows the store at most this often, and always at the end of a run. With a large pool the wait
# grows to EXPORT_COST_FACTOR times the last rewrite, so rewriting takes at most 1/20 of the time.
EXPORT_INTERVAL = 5.0
EXPORT_COST_FACTOR = 20
TARGET_REACHED = "target reached"
MAX_ROUNDS = "max_rounds reached"


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
    spent: Spent | None = None  # the run directory's totals after this round

    def as_stats(self) -> dict[str, object]:
        return {
            "round": self.round, "generated": self.generated, "kept": self.kept, "dropped": self.dropped,
            "accepted_total": self.accepted_total, "requests": self.usage.requests, "cached": self.usage.cached,
            "failed": self.usage.failed, "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens, "seconds": round(self.seconds, 3),
            "errors": dict(self.usage.errors), "dead_letters": dict(self.usage.dead),
            "by_stage": {stage: usage.as_dict() for stage, usage in self.usage.by_stage.items()},
        }


def seeds_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class GrowSession:
    """An open run directory: store, seeds, and the indexes rebuilt from it.

    `publish(store, run_dir)` rewrites the run's training file while rounds run (every few seconds at most):
    the grow route passes the Alpaca export, so a reader of a long run always finds the rows committed so far.
    """

    def __init__(self, config: GrowConfig, publish: Callable[[Store, Path], object] | None = None):
        self.config = config
        self.publish = publish
        self.run_dir = config.out
        # Validate the seed file before touching the run directory, so bad input leaves it as it was.
        seeds = load_seeds(config.seeds)
        digest = seeds_hash(config.seeds)
        self._lock = RunLock(self.run_dir)
        self._lock.acquire()
        try:
            self.store = Store.open(self.run_dir)
        except BaseException:
            self._lock.release()
            raise
        try:
            self._open_pool(seeds, digest)
        except BaseException:  # a half-opened session must not keep the run locked
            self.close()
            raise
        self.usage = Usage()  # this process's requests, over all rounds
        self._inflight: dict[str, asyncio.Future[TeacherReply | None]] = {}
        self._writer = ReplyWriter(self.store)
        self.ledger = Ledger(config, self.store.teacher_totals(), config.model or "", self.usage)
        self.idle_rounds = 0
        self.stopped = ""
        self._limits: dict[str, AimdLimit] = {}  # each endpoint's adaptive limit, from one run_rounds call to the next
        self._last_commit = time.perf_counter()

    def _open_pool(self, seeds: list[SeedTask], digest: str) -> None:
        """Seeds into a new store (or checked against the stored ones), then the indexes rebuilt from it."""
        config = self.config
        self._check_seeds(seeds, digest)
        self.seeds = self.store.seed_tasks()
        self.checks = instruction_checks(config.filters)
        self.dedup = DedupStage.from_store(config.filters, self.store)
        pool = self.store.generated_rounds()
        self.machine = [text for _, text in pool]
        self._machine_rounds = [number for number, _ in pool]  # nondecreasing: rounds commit in order
        self._recent_kept = deque((int(stats.get("kept", 0)) for stats in self.store.round_stats()),
                                  maxlen=RECENT_ROUNDS)

    def _check_seeds(self, seeds: list[SeedTask], digest: str) -> None:
        stored = self.store.get_meta("seeds_hash")
        if stored is None:
            self.store.add_seeds(seeds, digest)
        elif digest != stored:
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
        """Another round, unless the target is reached, this run's round budget or a spending budget is spent."""
        if self.done():
            self.stopped = TARGET_REACHED
        elif self.config.max_rounds is not None and rounds_run >= self.config.max_rounds:
            self.stopped = MAX_ROUNDS
        elif (spent := self.ledger.exhausted()) is not None:
            self.stopped = f"budget spent ({spent})"
        else:
            return True
        return False

    def close(self) -> None:
        self.store.close()
        self._lock.release()

    def __enter__(self) -> "GrowSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_rounds(self, endpoints: Endpoints, on_round: Callable[[RoundSummary], None] | None = None, *,
                   until: float | None = None, rounds_before: int = 0) -> int:
        """Rounds until the target, max_rounds or a budget stops them (see `stopped`); returns how many.

        With `until` (a `time.monotonic()` deadline), no round starts after it and the call returns once the
        rounds in flight are committed: the Prefect flow runs a task of a few minutes at a time this way.
        `rounds_before` counts rounds an earlier call of the same run did, for `max_rounds`.
        """
        # What the process holds now (imports, seeds, the pool's indexes rebuilt from the store) lives as long as
        # the rounds: frozen, it is out of the collector's full passes, which otherwise scan it all again as the
        # pool grows and stop the event loop meanwhile (at 4,000 tasks ten passes took 1.9 s of a 39 s run on
        # the fake teacher, its slots idle; 0.7 s frozen). Collected first, so no garbage is frozen with it.
        gc.collect()
        gc.freeze()
        try:
            return asyncio.run(self._pipelined(endpoints, on_round, until, rounds_before))
        finally:
            gc.unfreeze()

    async def _pipelined(self, endpoints: Endpoints, on_round: Callable[[RoundSummary], None] | None,
                         until: float | None, rounds_before: int) -> int:
        teacher = self._teacher(endpoints)
        window: deque[asyncio.Task[CollectedRound]] = deque()
        number, committed = self.store.next_round(), 0
        publisher = _Publisher(self.publish, self.run_dir) if self.publish else None
        try:
            while True:
                while (until is None or time.monotonic() < until) and self._may_start(
                    len(window), rounds_before + committed
                ):
                    window.append(asyncio.create_task(self._collect(teacher, number)))
                    number += 1
                if not window:
                    return committed
                collected = await window[0]
                window.popleft()
                summary = self._commit(collected, endpoints)
                committed += 1
                if publisher:
                    publisher.maybe_start()
                if on_round:
                    on_round(summary)
                if self.done() and self.config.batch:
                    # In batch mode each round still in flight would cost more batches: cancelled below. Otherwise
                    # they finish, since their requests are paid for, and their answers are stored for a later,
                    # larger target.
                    self.stopped = TARGET_REACHED
                    return committed
        finally:
            for task in window:  # the target or a failure ended the run: answers stored so far stay cached
                task.cancel()
            await asyncio.gather(*window, return_exceptions=True)
            if publisher:
                await publisher.settle()  # before the caller's final export, which must be the last write
            await teacher.close()

    def _may_start(self, in_flight: int, committed: int) -> bool:
        if in_flight >= (self.config.pipeline_rounds or 1) or not self.wants_round(committed + in_flight):
            return False
        # Near the target, rounds in flight are expected to fill it; starting more would be waste.
        recent = self._recent_kept
        expected = sum(recent) / len(recent) if recent else self._first_guess()
        return in_flight == 0 or self.accepted + in_flight * expected < self.config.target

    def _first_guess(self) -> float:
        # Before any round is known, guess half of what a prompt asks for is kept: a generous guess starts
        # fewer rounds, so a small target is never paid for many times over.
        config = self.config
        asked = config.alpaca_tasks if config.method == "alpaca" else config.demos
        return (config.prompts_per_round or 1) * asked / 2

    def _teacher(self, endpoints: Endpoints) -> Teacher:
        check_cost_budget(self.config, endpoints.model)
        self.ledger.model = endpoints.model
        if self.config.batch:
            return batch_teacher(self.config, endpoints, self.store, self.run_dir)
        return direct_teacher(self.config, endpoints, self._limits)

    async def _collect(self, teacher: Teacher, number: int) -> CollectedRound:
        stream = RoundStream(self.config, self.checks, lambda text: self.dedup.screen(text))
        asker = CachedTeacher(teacher, self.store, Usage(parent=self.usage), inflight=self._inflight,
                              writer=self._writer)
        return await stream.collect(asker, number, self._plans(number))

    def _plans(self, round_no: int) -> list[PromptPlan]:
        if self.config.method == "alpaca":
            return plan_alpaca(self.config, self.seeds, round_no)
        # Demos come from rounds committed before this one could start: the same after a crash.
        visible = bisect.bisect_right(self._machine_rounds, round_no - (self.config.pipeline_rounds or 1))
        return plan_self_instruct(self.config, self.seeds, self.machine[:visible], round_no)

    def _commit(self, collected: CollectedRound, endpoints: Endpoints) -> RoundSummary:
        """The final pass and the round's one transaction."""
        accepted: list[Candidate] = []
        rejections = list(collected.rejections)
        try:
            self._final_pass(collected, accepted, rejections)
            usage = collected.asker.usage
            summary = RoundSummary(
                round=collected.number, generated=collected.generated, kept=len(accepted),
                dropped=dict(Counter(rej.reason for rej in rejections)),
                accepted_total=self.accepted + len(accepted), target=self.config.target,
                usage=usage, seconds=self._round_seconds(collected),
            )
            record = RoundRecord(collected.number, accepted, rejections, summary.as_stats(),
                                 self.config.model_dump_json())
            self.store.commit_round(record, self._provenance(endpoints))
        except BaseException:
            # Kept items joined the indexes before the commit; rebuild them from the store.
            self.dedup = DedupStage.from_store(self.config.filters, self.store)
            raise
        self.machine += [cand.instruction for cand in accepted]
        self._machine_rounds += [collected.number] * len(accepted)
        self._recent_kept.append(len(accepted))
        summary.spent = self.ledger.spent()
        self._check_idle(summary)
        return summary

    def _round_seconds(self, collected: CollectedRound) -> float:
        """Wall time this round adds to the run: since its start, or since the previous commit if later.

        Up to pipeline_rounds rounds overlap; counting each from its own start would count the overlap again
        (16 rounds in flight made throughput look 16 times lower). The rounds' seconds add up to the run's.
        """
        now = time.perf_counter()
        seconds = now - max(collected.started, self._last_commit)
        self._last_commit = now
        return seconds

    def _check_idle(self, summary: RoundSummary) -> None:
        self.idle_rounds = 0 if summary.kept else self.idle_rounds + 1
        if self.idle_rounds >= MAX_IDLE_ROUNDS:
            raise TeacherError(
                f"no new example was accepted in {MAX_IDLE_ROUNDS} rounds in a row; the teacher's replies "
                f"are unusable (see drop reasons with `selfinstruct report`, or the replies table in the store)"
            )

    def _final_pass(self, collected: CollectedRound, accepted: list[Candidate], rejections: list[Rejection]) -> None:
        """In order, as the paper's loop: each kept candidate joins the pool at once."""
        room = self.config.target - self.accepted
        candidates = collected.candidates
        complete = [cand for cand in candidates if cand.instances]
        sketches = iter(self.dedup.sketches(complete))  # MinHash sketches of the whole round in one batch
        for cand in candidates:
            if len(accepted) >= room:
                break  # the target is reached; the rest of the round is surplus
            if not cand.instances:
                rejections.append(Rejection(candidate=cand, reason=EMPTY_OUTPUT))
                continue
            sketched = next(sketches)
            verdict = self.dedup.check(cand, sketched, collected.screened.get(cand.instruction))
            if verdict.reason is not None:
                rejections.append(Rejection(candidate=cand, reason=verdict.reason, detail=verdict.detail))
                continue
            if verdict.duplicates:
                cand, sketched = _without_duplicates(cand, sketched, verdict.duplicates, rejections)
            self.dedup.add(cand, sketched)
            accepted.append(
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


class _Publisher:
    """Rewrites the run's training file from a worker thread while rounds run, one rewrite at a time.

    The rewrite is O(pool) (at 4,000 tasks about a quarter of a second of JSON); on the event loop it held back
    every reply and request meanwhile, and the teacher's slots went idle (5% of a 40 s run at C=128). The thread
    reads its own connection to the store: SQLite's WAL gives it the last committed rounds while the loop's
    connection commits the next ones.
    """

    def __init__(self, publish: Callable[[Store, Path], object], run_dir: Path) -> None:
        self.publish, self.run_dir = publish, run_dir
        self._task: asyncio.Future[float] | None = None
        self._done_at, self._cost = time.monotonic(), 0.0

    def maybe_start(self) -> None:
        """Start a rewrite when none is running and the last one is old enough; a failed one raises here."""
        if self._task is not None:
            if not self._task.done():
                return
            self._cost = self._task.result()  # a failure (disk full) ends the run, as it did on the loop
            self._task, self._done_at = None, time.monotonic()
        if time.monotonic() - self._done_at >= max(EXPORT_INTERVAL, EXPORT_COST_FACTOR * self._cost):
            self._task = asyncio.ensure_future(asyncio.to_thread(self._rewrite))

    async def settle(self) -> None:
        """Wait for a rewrite in progress; its failure is left to the final export, which writes the same file."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _rewrite(self) -> float:
        started = time.monotonic()
        with Store.open(self.run_dir) as store:
            self.publish(store, self.run_dir)
        return time.monotonic() - started


def direct_teacher(config: GrowConfig, endpoints: Endpoints,
                   limits: dict[str, AimdLimit] | None = None) -> OpenAITeacher:
    """The client of `endpoints` with the config's limits and retries (the judge's requests take it too);
    `limits`: adaptive limits kept from an earlier client of the same run, by base URL (filled in for the next)."""
    return OpenAITeacher(
        base_urls=endpoints.base_urls, model=endpoints.model, api=config.api or "chat",
        api_key=endpoints.api_key, timeout=config.request_timeout, max_attempts=config.max_attempts,
        concurrency=config.concurrency or 1, requests_per_minute=config.requests_per_minute,
        tokens_per_minute=config.tokens_per_minute, failure_window=config.failure_window,
        failure_threshold=config.failure_threshold, batch_prompts=config.batch_prompts or 1,
        retry_budget=config.retry_budget, adaptive=config.adaptive_concurrency,
        schema_dialect=LLAMA_CPP_PYTHON if config.backend == "cpu" else OPENAI_SCHEMA, limits=limits,
    )


def _without_duplicates(cand: Candidate, sketched: list[Sketched] | None, duplicates: tuple[tuple[int, str], ...],
                        rejections: list[Rejection]) -> tuple[Candidate, list[Sketched] | None]:
    """The candidate without the instances whose example MinHash found in the pool; each one a rejection."""
    dropped = dict(duplicates)
    for position, detail in duplicates:
        only = cand.model_copy(update={"instances": (cand.instances[position],)})
        rejections.append(Rejection(candidate=only, reason=MINHASH, detail=detail))
    keep = [position for position in range(len(cand.instances)) if position not in dropped]
    kept = cand.model_copy(update={"instances": tuple(cand.instances[position] for position in keep)})
    return kept, None if sketched is None else [sketched[position] for position in keep]
