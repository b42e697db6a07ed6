"""One round's teacher requests as a stream: nothing waits for a whole stage to finish.

Each generation reply is parsed and filtered as soon as it arrives, and each instruction that passes
is classified and given its instances at once, so the round keeps the teacher busy until its last
request. The results keep their order (plan order, then order within a reply) whatever order the
replies arrive in: the final pass in `pipeline.py` decides in that order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ..core.config import GrowConfig
from ..filters.base import EMPTY_OUTPUT, ROUGE, STRUCTURED_INVALID, TEACHER_FAILED
from ..filters.dedup_stage import Screened
from ..filters.heuristics import check_instruction
from ..filters.instances import check_task
from .methods import (
    PromptPlan, classify_request, instance_request, read_classification, read_generation, read_instances,
)
from ..core.records import Candidate, Rejection
from .prompts import prompt_fragments
from .reply_models import StructuredReplyInvalid
from ..core.teacher_records import TeacherReply, TeacherRequest
from ..teacher.cache import CachedTeacher

# Evidence when an instruction is too close to the pool (else None), and the check's record.
RougeScreen = Callable[[str], "tuple[str | None, Screened]"]


@dataclass
class CollectedRound:
    """A round's candidates for the final pass, with what was dropped on the way, in a fixed order."""

    number: int
    asker: CachedTeacher
    candidates: list[Candidate] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    generated: int = 0
    started: float = field(default_factory=time.perf_counter)
    screened: dict[str, Screened] = field(default_factory=dict)  # early ROUGE-L checks, by instruction


@dataclass(frozen=True)
class _PlanResult:
    candidates: list[Candidate]
    rejections: list[Rejection]
    generated: int


@dataclass
class RoundStream:
    """What a round needs besides its plans: the config, the text checks and the pool's ROUGE-L check."""

    config: GrowConfig
    checks: Sequence[object]
    rouge_screen: RougeScreen

    async def collect(self, asker: CachedTeacher, number: int, plans: list[PromptPlan]) -> CollectedRound:
        collected = CollectedRound(number, asker)
        results = await asyncio.gather(*(self._from_plan(asker, plan, number, collected.screened) for plan in plans))
        for result in results:
            collected.candidates += result.candidates
            collected.rejections += result.rejections
            collected.generated += result.generated
        return collected

    async def _from_plan(self, asker: CachedTeacher, plan: PromptPlan, number: int,
                         screened: dict[str, Screened]) -> _PlanResult:
        base = Candidate(instruction="", round=number, prompt_hash=plan.prompt_hash, demo_ids=plan.demo_ids)
        outcome = await _ask_and_read(asker, plan.request, lambda request, reply: read_generation(
            PromptPlan(request, plan.demo_ids), reply, number))
        if outcome is None:
            return _PlanResult([], [], 0)
        if isinstance(outcome, StructuredReplyInvalid):
            return _PlanResult([], [_invalid(base, plan.request, outcome)], 1)
        parsed, cut = outcome
        survivors, rejections = self._early_filters(parsed, screened)
        if self.config.method == "self-instruct":
            outcomes = await asyncio.gather(*(self._complete_task(asker, cand) for cand in survivors))
        else:  # an Alpaca task came with its instance; the reply's cut-off last task is already in `cut`
            outcomes = [self._check_answers(cand, cut_off=False) for cand in survivors]
        survivors = [kept for kept, _ in outcomes if kept is not None]
        rejections += [rejection for _, dropped in outcomes for rejection in dropped]
        return _PlanResult(survivors, cut + rejections, len(parsed) + len(cut))

    def _check_answers(self, cand: Candidate, cut_off: bool,
                       limit: int | None = None) -> tuple[Candidate | None, list[Rejection]]:
        """The instance filters and answer checks: the task with the first `limit` instances that pass (None
        when it is dropped as a whole), and a rejection per dropped instance, or one for the task."""
        outcome = check_task(cand.instruction, cand.instances, cand.is_classification, self.config.filters, cut_off,
                             prompt_fragments())
        if not outcome.task_verdict.keep:
            return None, [Rejection(candidate=cand, reason=outcome.task_verdict.reason or EMPTY_OUTPUT,
                                    detail=outcome.task_verdict.detail)]
        dropped = [Rejection(candidate=cand.model_copy(update={"instances": (instance,)}),
                             reason=verdict.reason or EMPTY_OUTPUT, detail=verdict.detail)
                   for instance, verdict in outcome.dropped]
        return cand.model_copy(update={"instances": tuple(outcome.kept[:limit])}), dropped

    def _early_filters(self, parsed: list[Candidate],
                       screened: dict[str, Screened]) -> tuple[list[Candidate], list[Rejection]]:
        """Text checks and ROUGE-L against the pool as it is now; the final pass checks again, in order.

        The pool only grows, so an instruction dropped here would be dropped by the final pass too:
        dropping it early only saves its classify and instance requests.
        """
        survivors, rejections = [], []
        for cand in parsed:
            verdict = check_instruction(cand.instruction, self.checks)
            if not verdict.keep:
                rejections.append(Rejection(candidate=cand, reason=verdict.reason or "", detail=verdict.detail))
                continue
            evidence, record = self.rouge_screen(cand.instruction)
            if evidence is not None:
                rejections.append(Rejection(candidate=cand, reason=ROUGE, detail=evidence))
            else:
                # The first record of a text is the one to trust: it covers the smallest pool.
                screened.setdefault(cand.instruction, record)
                survivors.append(cand)
        return survivors, rejections

    async def _complete_task(self, asker: CachedTeacher, cand: Candidate) -> tuple[Candidate | None, list[Rejection]]:
        """Self-Instruct: classify the instruction, ask for its instances, check them."""
        question = classify_request(self.config, cand.instruction)
        label = await _ask_and_read(asker, question, read_classification)
        if isinstance(label, StructuredReplyInvalid):
            return None, [_invalid(cand, question, label)]
        cand = cand.model_copy(update={"is_classification": bool(label)})
        request = instance_request(self.config, cand)
        outcome = await _ask_and_read(asker, request, lambda request, reply: read_instances(
            request, cand, reply, self.config.instances_per_task))
        if outcome is None:
            return None, [Rejection(candidate=cand, reason=TEACHER_FAILED, detail="instance request failed")]
        if isinstance(outcome, StructuredReplyInvalid):
            return None, [_invalid(cand, request, outcome)]
        with_instances, cut_off = outcome
        return self._check_answers(with_instances, cut_off, limit=self.config.instances_per_task)


_Read = TypeVar("_Read")


async def _ask_and_read(asker: CachedTeacher, request: TeacherRequest,
                        read: Callable[[TeacherRequest, TeacherReply], _Read]) -> _Read | StructuredReplyInvalid | None:
    """`read` of the reply (None when the request failed for good); an invalid structured reply is retried once,
    and the second StructuredReplyInvalid is returned for the caller to count."""
    reply = await asker.ask(request)
    if reply is None:
        return None
    try:
        return read(request, reply)
    except StructuredReplyInvalid:
        again = request.resampled()
    reply = await asker.ask(again)
    if reply is None:
        return None
    try:
        return read(again, reply)
    except StructuredReplyInvalid as err:
        return err


def _invalid(cand: Candidate, request: TeacherRequest, err: StructuredReplyInvalid) -> Rejection:
    return Rejection(candidate=cand, reason=STRUCTURED_INVALID, detail=f"{request.stage}: {err.detail}")
