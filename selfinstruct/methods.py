"""The two generation methods: which requests to send, and how replies become candidates.

Pure functions over values; the pipeline does the sending.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .config import GrowConfig
from .filters.base import TRUNCATED
from .filters.heuristics import usable_instances
from .parse import parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions
from .prompts import (
    alpaca_stop, instance_stops, render_alpaca_prompt, render_classify_prompt, render_instance_prompt,
    render_instruction_prompt,
)
from .records import Candidate, Rejection, SeedTask
from .teacher.base import TeacherReply, TeacherRequest


@dataclass(frozen=True)
class PromptPlan:
    """One generation request and what it showed the teacher."""

    request: TeacherRequest
    demo_ids: tuple[str, ...]

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(self.request.prompt.encode()).hexdigest()[:16]


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
        request = TeacherRequest(
            stage="instructions",
            prompt=render_instruction_prompt([text for _, text in demos]),
            decoding=decoding,
            sample=index,
        )
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
        request = TeacherRequest(
            stage="alpaca",
            prompt=render_alpaca_prompt(demos, config.alpaca_tasks),
            decoding=decoding,
            sample=index,
        )
        plans.append(PromptPlan(request, tuple(seed.id for seed in demos)))
    return plans


def read_generation(plan: PromptPlan, reply: TeacherReply, round_no: int) -> tuple[list[Candidate], list[Rejection]]:
    """Candidates from one generation reply, plus the cut-off last item if the reply hit its limit."""
    base = Candidate(instruction="", round=round_no, prompt_hash=plan.prompt_hash, demo_ids=plan.demo_ids)
    if plan.request.stage == "alpaca":
        parsed = parse_alpaca_tasks(reply.text, reply.finish_reason)
        candidates = [
            base.model_copy(update={"instruction": text, "instances": (instance,)})
            for text, instance in parsed.items
        ]
    else:
        parsed_text = parse_instructions(reply.text, reply.finish_reason)
        candidates = [base.model_copy(update={"instruction": text}) for text in parsed_text.items]
        parsed = parsed_text
    rejections = []
    if parsed.truncated:
        cut = base.model_copy(update={"instruction": parsed.truncated[:500]})
        rejections.append(Rejection(candidate=cut, reason=TRUNCATED, detail="reply hit its max_tokens limit"))
    return candidates, rejections


def classify_request(config: GrowConfig, instruction: str) -> TeacherRequest:
    return TeacherRequest(stage="classify", prompt=render_classify_prompt(instruction),
                          decoding=config.classify_decoding)


def read_classification(reply: TeacherReply | None) -> bool:
    # Like Self-Instruct, anything but a clear "Yes" counts as not classification.
    return bool(reply and parse_classification(reply.text))


def instance_request(config: GrowConfig, candidate: Candidate) -> TeacherRequest:
    # Stop after the last instance that can be kept: the rest would be paid for and thrown away.
    stops = instance_stops(candidate.is_classification, config.instances_per_task)
    decoding = config.instance_decoding
    decoding = decoding.model_copy(update={"stop": tuple(dict.fromkeys((*decoding.stop, *stops)))})
    return TeacherRequest(
        stage="instances",
        prompt=render_instance_prompt(candidate.instruction, candidate.is_classification),
        decoding=decoding,
    )


def read_instances(candidate: Candidate, reply: TeacherReply, limit: int) -> Candidate:
    """The candidate with up to `limit` usable instances (non-empty outputs, no repeats)."""
    parsed = parse_instances(reply.text, candidate.is_classification, reply.finish_reason)
    return candidate.model_copy(update={"instances": tuple(usable_instances(parsed.items)[:limit])})
