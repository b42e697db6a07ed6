"""Judging a run's rows: each grown row not yet scored by this judge model and rubric version, one request each.

Requests go through the run's request cache (`CachedTeacher`, stage "judge"): a reply is stored before it is
read and each verdict as it is read, so a judge killed mid-run and started again pays for no reply twice and
asks nothing about rows already scored. A reply without a usable score is asked once more (another sample);
a second unusable one records the row as unjudged with the reason, and a later run asks again (from the
cache, so at no cost unless the settings changed). A request that fails for good is dead-lettered and the
row left for a later run. The judge's budgets (`judge.max_prompts`, ...) count the judge's requests alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import GrowConfig, build_model, stored_settings
from ..core.errors import InputError
from ..core.records import Judgement, JudgeTarget
from ..core.store import JUDGE_STAGE, STORE_NAME, Store
from ..core.teacher_records import TeacherReply, TeacherRequest
from ..generate.pipeline import direct_teacher
from ..teacher.backend import Endpoints
from ..teacher.base import Teacher
from ..teacher.budget import Ledger, Spent, check_cost_budget
from ..teacher.cache import CachedTeacher
from ..teacher.registry import open_teacher
from ..teacher.usage import Usage
from .read import JudgeReplyInvalid, Verdict, read_verdict
from .rubric import COMPLETIONS_PREFIX, judge_prompt, judge_response_format

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = {"cpu": 4}  # llama.cpp serves one prompt at a time; others batch
OTHER_CONCURRENCY = 32


@dataclass
class JudgeResult:
    """What a judge run did, and where the run directory stands with this judge."""

    judge_model: str
    rubric_version: str
    rows: int  # grown rows in the run
    scored_before: int  # rows this judge had scored before this run (skipped)
    scored: int = 0  # rows scored in this run
    unjudged: int = 0  # rows recorded unjudged in this run (unusable reply twice)
    failed: int = 0  # rows whose request was dead-lettered in this run (left for a later run)
    stopped: str = ""  # why the run stopped before the last row, e.g. a spent budget
    usage: Usage = field(default_factory=Usage)
    spent: Spent | None = None  # the judge's totals over the run directory
    seconds: float = 0.0

    @property
    def left(self) -> int:
        """Rows without a score from this judge after the run."""
        return self.rows - self.scored_before - self.scored


def judge_teacher_config(config: GrowConfig) -> GrowConfig:
    """The GrowConfig the judge's teacher is opened and limited with: the grow's settings (timeouts, retries,
    prices, server options) with the judge's backend, model, endpoints, API, concurrency and budgets."""
    judge = config.judge
    if judge.backend is not None:
        backend, model, base_url = judge.backend, judge.model, judge.base_url
    else:
        backend, model, base_url = config.backend, judge.model or config.model, judge.base_url or config.base_url
    values = config.model_dump() | {
        "backend": backend, "model": model, "base_url": base_url, "api": judge.api, "structured": judge.structured,
        "batch": False, "batch_prompts": 1, "request_timeout": judge.request_timeout,
        "concurrency": judge.concurrency or DEFAULT_CONCURRENCY.get(backend, OTHER_CONCURRENCY),
        "max_prompts": judge.max_prompts, "max_total_tokens": judge.max_total_tokens, "max_cost": judge.max_cost,
    }
    return build_model(GrowConfig, values, "the judge's settings (judge.*)")


def stored_settings_of(run_dir: Path) -> dict[str, object]:
    """The settings of the configuration that last grew `run_dir` (empty for a run no grow made), read without
    writing to its store: `selfinstruct judge` starts from them, so the grow's teacher is the default judge."""
    if not (run_dir / STORE_NAME).is_file():
        raise InputError(str(run_dir), None, f"a run directory holding {STORE_NAME}", "no store there")
    store = Store.open_readonly(run_dir)
    try:
        history = store.config_history()
    finally:
        store.close()
    return stored_settings(dict(history[-1].config)) if history else {}


def judge_store(config: GrowConfig, store: Store, run_dir: Path,
                on_judged: Callable[[int, int], None] | None = None) -> JudgeResult:
    """Judge every grown row of `store` this judge has not scored; `on_judged(done, total)` after each row.

    The caller holds the run directory (a grow session, or `judge_run`'s lock).
    """
    targets = store.judge_targets()
    if not targets:
        raise InputError(str(run_dir), None, "accepted tasks to judge (the judge scores grown rows)",
                         "none in the store")
    teacher_config = judge_teacher_config(config)
    started = time.perf_counter()
    with open_teacher(teacher_config, run_dir) as endpoints:
        model = endpoints.model
        version = config.judge.rubric_version
        scored = {(j.task_id, j.instance) for j in store.judgements(model, version) if j.judged}
        todo = [target for target in targets if (target.task_id, target.instance) not in scored]
        result = JudgeResult(model, version, len(targets), len(targets) - len(todo))
        check_cost_budget(teacher_config, model)
        ledger = Ledger(teacher_config, store.teacher_totals(judge=True), model, result.usage)
        if todo:
            judge = _Judge(config, teacher_config, store, endpoints, ledger, result, on_judged)
            asyncio.run(judge.run(todo))
        result.spent = ledger.spent()
    result.seconds = time.perf_counter() - started
    return result


class _Judge:
    """One judge run's requests: `concurrency` workers take rows in order until none or the budget is left."""

    def __init__(self, config: GrowConfig, teacher_config: GrowConfig, store: Store, endpoints: Endpoints,
                 ledger: Ledger, result: JudgeResult, on_judged: Callable[[int, int], None] | None) -> None:
        self.judge = config.judge
        self.teacher_config = teacher_config
        self.store = store
        self.endpoints = endpoints
        self.ledger = ledger
        self.result = result
        self.on_judged = on_judged
        self.structured = self.judge.uses_structured
        self.completions = self.judge.api == "completions"
        self.in_flight = 0
        self.done = 0

    async def run(self, todo: list[JudgeTarget]) -> None:
        teacher: Teacher = direct_teacher(self.teacher_config, self.endpoints)
        asker = CachedTeacher(teacher, self.store, self.result.usage)
        rows = iter(todo)
        workers = [asyncio.ensure_future(self._work(asker, rows, len(todo)))
                   for _ in range(min(self.teacher_config.concurrency or 1, len(todo)))]
        try:
            finished, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for worker in finished:
                worker.result()  # a teacher failure (unreachable, too many failures) stops the run
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await teacher.close()

    async def _work(self, asker: CachedTeacher, rows: Iterator[JudgeTarget], total: int) -> None:
        for target in rows:
            if not await self._judge_row(asker, target):
                return
            self.done += 1
            if self.on_judged is not None:
                self.on_judged(self.done, total)

    def _request(self, target: JudgeTarget) -> TeacherRequest:
        prompt = judge_prompt(target, self.judge.rubric_version, self.structured, self.completions)
        return TeacherRequest(stage=JUDGE_STAGE, prompt=prompt, decoding=self.judge.decoding,
                              response_format=judge_response_format() if self.structured else None)

    async def _judge_row(self, asker: CachedTeacher, target: JudgeTarget) -> bool:
        """Ask about one row and record the verdict; False when the budget stopped the run first."""
        request = self._request(target)
        first = await self._ask(asker, request)
        if first is None:
            return not self.result.stopped
        try:
            self._record(target, read_verdict(first.text, self._prefix), request, asker)
            return True
        except JudgeReplyInvalid as err:
            log.info("judge reply for task %d/%d unusable (%s): asking again", target.task_id, target.instance,
                     err.detail)
        again = request.resampled()
        second = await self._ask(asker, again)
        if second is None:
            return not self.result.stopped
        try:
            self._record(target, read_verdict(second.text, self._prefix), again, asker)
        except JudgeReplyInvalid as err:
            self._save(target, None, f"unjudged: {err.detail} (asked twice)", again, asker)
            self.result.unjudged += 1
        return True

    @property
    def _prefix(self) -> str:
        return COMPLETIONS_PREFIX if self.completions else ""

    async def _ask(self, asker: CachedTeacher, request: TeacherRequest) -> TeacherReply | None:
        """The reply (None: dead-lettered, or the budget is spent); a stored reply needs no budget."""
        key = request.cache_key(asker.teacher.api, asker.teacher.model)
        if self.store.cached_reply(key) is None:
            spent = self._budget_spent()
            if spent is not None:
                self.result.stopped = self.result.stopped or f"judge budget spent ({spent})"
                return None
        self.in_flight += 1
        try:
            reply = await asker.ask(request)
        finally:
            self.in_flight -= 1
        if reply is None:
            self.result.failed += 1
        return reply

    def _budget_spent(self) -> str | None:
        """The spent budget, counting prompts in flight: a worker must not start a prompt the others will pay."""
        exhausted = self.ledger.exhausted()
        limit = self.judge.max_prompts
        if exhausted is None and limit is not None and self.ledger.spent().prompts + self.in_flight >= limit:
            exhausted = f"max_prompts: {limit} prompts spent or in flight"
        return exhausted

    def _record(self, target: JudgeTarget, verdict: Verdict, request: TeacherRequest, asker: CachedTeacher) -> None:
        self._save(target, verdict, verdict.reason, request, asker)
        self.result.scored += 1

    def _save(self, target: JudgeTarget, verdict: Verdict | None, reason: str, request: TeacherRequest,
              asker: CachedTeacher) -> None:
        self.store.save_judgement(Judgement(
            task_id=target.task_id, instance=target.instance, judge_model=self.result.judge_model,
            rubric_version=self.result.rubric_version, score=verdict.score if verdict else None, reason=reason,
            category=verdict.category if verdict else None, difficulty=verdict.difficulty if verdict else None,
            request_key=request.cache_key(asker.teacher.api, asker.teacher.model)))
