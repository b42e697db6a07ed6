"""The two generation methods: which requests to send, and how replies become candidates.

Pure functions over values; the pipeline does the sending.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.config import Decoding, GrowConfig
from ..filters.base import TRUNCATED
from ..filters.heuristics import usable_instances
from .parse import parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions
from .prompts import (
    alpaca_stop, instance_stops, render_alpaca_prompt, render_classify_prompt, render_instance_prompt,
    render_instruction_prompt, structured_prompt,
)
from ..core.records import Candidate, Instance, Rejection, SeedTask
from .reply_models import (
    read_structured_alpaca, read_structured_classification, read_structured_instances, read_structured_instructions,
    response_format,
)
from ..core.teacher_records import Stage
from ..core.teacher_records import TeacherReply, TeacherRequest


@dataclass(frozen=True)
class PromptPlan:
    """One generation request and what it showed the teacher."""

    request: TeacherRequest
    demo_ids: tuple[str, ...]

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(self.request.prompt.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _format_text(stage: Stage, is_classification: bool, max_items: int) -> str:
    return json.dumps(response_format(stage, is_classification, max_items or None))


def _request(config: GrowConfig, stage: Stage, prompt: str, decoding: Decoding, sample: int = 0, *,
             count: int = 0, is_classification: bool = False) -> TeacherRequest:
    """A request of `stage`; with structured outputs on, its prompt asks for the stage's JSON and its
    response_format carries the schema."""
    if not config.uses_structured:
        if config.api == "chat":  # a chat model opens with a preamble and a blank line: a blank-line stop would end it
            decoding = decoding.model_copy(update={"stop": tuple(stop for stop in decoding.stop if stop.strip())})
        return TeacherRequest(stage=stage, prompt=prompt, decoding=decoding, sample=sample)
    kind = "labels" if stage == "instances" and is_classification else stage
    # A stop string would cut the JSON object: the schema ends the reply instead.
    return TeacherRequest(stage=stage, prompt=structured_prompt(prompt, kind, count),
                          decoding=decoding.model_copy(update={"stop": ()}), sample=sample,
                          response_format=_format_text(stage, is_classification, count))


def round_rng(config: GrowConfig, round_no: int, index: int) -> random.Random:
    # Seeded by (seed, round, index): a round re-run after a crash renders the
    # same prompts, so every answer already stored is found in the cache.
    return random.Random(f"{config.seed}:{round_no}:{index}")


def plan_self_instruct(config: GrowConfig, seeds: Sequence[SeedTask], machine: Sequence[str],
                       round_no: int) -> list[PromptPlan]:
    """Prompts of `demos` instructions: seeds plus up to `machine_demos` generated ones, shuffled."""
    plans = []
    for index in range(config.prompts_per_round):
        rng = round_rng(config, round_no, index)
        n_machine = min(config.machine_demos, len(machine))
        chosen_seeds = rng.sample(list(seeds), min(config.demos - n_machine, len(seeds)))
        demos = [(seed.id, seed.instruction) for seed in chosen_seeds]
        demos += [(f"machine:{text[:40]}", text) for text in rng.sample(list(machine), n_machine)]
        rng.shuffle(demos)
        # Ask for as many new tasks as were shown, as the paper does: stop before the next block.
        decoding = config.instruction_decoding
        decoding = decoding.model_copy(update={"stop": (*decoding.stop, f"Task {2 * len(demos) + 1}:")})
        request = _request(config, "instructions", render_instruction_prompt([text for _, text in demos]),
                           decoding, index, count=len(demos))
        plans.append(PromptPlan(request, tuple(demo_id for demo_id, _ in demos)))
    return plans


def plan_alpaca(config: GrowConfig, seeds: Sequence[SeedTask], round_no: int) -> list[PromptPlan]:
    """Prompts of `alpaca_demos` seed tasks asking for `alpaca_tasks` complete tasks each."""
    plans = []
    for index in range(config.prompts_per_round):
        rng = round_rng(config, round_no, index)
        demos = rng.sample(list(seeds), min(config.alpaca_demos, len(seeds)))
        decoding = config.alpaca_decoding
        decoding = decoding.model_copy(update={"stop": (*decoding.stop, alpaca_stop(len(demos), config.alpaca_tasks))})
        request = _request(config, "alpaca", render_alpaca_prompt(demos, config.alpaca_tasks), decoding, index,
                           count=config.alpaca_tasks)
        plans.append(PromptPlan(request, tuple(seed.id for seed in demos)))
    return plans


def read_generation(plan: PromptPlan, reply: TeacherReply, round_no: int) -> tuple[list[Candidate], list[Rejection]]:
    """Candidates from one generation reply, plus the cut-off last item if the reply hit its limit.

    Raises StructuredReplyInvalid when a structured reply does not match its schema."""
    base = Candidate(instruction="", round=round_no, prompt_hash=plan.prompt_hash, demo_ids=plan.demo_ids)
    structured = plan.request.response_format is not None
    if plan.request.stage == "alpaca":
        read_tasks = read_structured_alpaca if structured else parse_alpaca_tasks
        parsed = read_tasks(reply.text, reply.finish_reason)
        candidates = [
            base.model_copy(update={"instruction": text, "instances": (instance,)})
            for text, instance in parsed.items
        ]
    else:
        read_list = read_structured_instructions if structured else parse_instructions
        parsed_text = read_list(reply.text, reply.finish_reason)
        candidates = [base.model_copy(update={"instruction": text}) for text in parsed_text.items]
        parsed = parsed_text
    rejections = []
    if parsed.truncated:
        cut = base.model_copy(update={"instruction": parsed.truncated[:500]})
        rejections.append(Rejection(candidate=cut, reason=TRUNCATED, detail="reply hit its max_tokens limit"))
    return candidates, rejections


def classify_request(config: GrowConfig, instruction: str) -> TeacherRequest:
    decoding = config.classify_decoding
    if config.uses_structured:  # room for the JSON object around the answer
        decoding = decoding.model_copy(update={"max_tokens": max(decoding.max_tokens, 16)})
    return _request(config, "classify", render_classify_prompt(instruction), decoding)


def read_classification(request: TeacherRequest, reply: TeacherReply | None) -> bool:
    """Raises StructuredReplyInvalid when a structured reply does not match its schema."""
    if reply is None:
        return False
    if request.response_format is not None:
        return read_structured_classification(reply.text, reply.finish_reason).items[0]
    # Like Self-Instruct, anything but a clear "Yes" counts as not classification.
    return bool(parse_classification(reply.text))


def instance_request(config: GrowConfig, candidate: Candidate) -> TeacherRequest:
    # Stop after the last instance that can be kept: the rest would be paid for and thrown away.
    stops = instance_stops(candidate.is_classification, config.instances_per_task)
    decoding = config.instance_decoding
    decoding = decoding.model_copy(update={"stop": tuple(dict.fromkeys((*decoding.stop, *stops)))})
    return _request(config, "instances", render_instance_prompt(candidate.instruction, candidate.is_classification),
                    decoding, count=config.instances_per_task, is_classification=candidate.is_classification)


def read_instances(request: TeacherRequest, candidate: Candidate, reply: TeacherReply,
                   limit: int) -> tuple[Candidate, bool]:
    """The candidate with its usable instances (non-empty, no repeats; `limit` and two spares), and whether its
    last instance is cut (the reply hit its length limit and the reader could not split the cut item off).
    Raises StructuredReplyInvalid when a structured reply does not match its schema."""
    read: object = read_structured_instances if request.response_format is not None else parse_instances
    parsed = read(reply.text, candidate.is_classification, reply.finish_reason)  # type: ignore[operator]
    instances: list[Instance] = usable_instances(parsed.items)
    cut_off = reply.finish_reason == "length" and parsed.truncated is None
    # Two spares at most: the answer checks may drop some, and the limit is applied to what they keep.
    return candidate.model_copy(update={"instances": tuple(instances[:limit + 2])}), cut_off
