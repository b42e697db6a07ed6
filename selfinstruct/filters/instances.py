"""One task's instances through Self-Instruct's instance filters and the answer checks.

Self-Instruct drops an instance whose input is its output or whose input or output ends with ':' (a
generation cut off before its content), and a whole task when one input has two different outputs:
the task is then ambiguous, and whichever output a trainer sees may be the wrong one. An empty input is
fine everywhere: no-input tasks and label-only instances of classification tasks are valid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..core.config import FilterConfig
from ..core.records import Instance
from .answers import AnswerChecks, TaskFacts, task_facts
from .base import (
    CONFLICTING_OUTPUTS, EMPTY_OUTPUT, INSTANCE_ENDS_WITH_COLON, INSTANCE_INPUT_IS_OUTPUT, INSTANCE_REPEATED, KEEP,
    Verdict, drop,
)


@dataclass(frozen=True)
class InstanceCheck:
    """The outcome for one task."""

    kept: list[Instance]
    dropped: list[tuple[Instance, Verdict]]
    task_verdict: Verdict


def normalise(text: str) -> str:
    """Case and runs of whitespace ignored, as the instance filters compare texts."""
    return " ".join(text.lower().split())


class TaskChecker:
    """The instance filters and answer checks of one config, compiled once."""

    def __init__(self, config: FilterConfig, prompt_text: tuple[str, ...] = ()) -> None:
        self.rules = config.instances
        self.prompt_text = prompt_text
        self.answers = AnswerChecks(config.answers, prompt_text)

    def check(
        self, instruction: str, instances: Sequence[Instance], is_classification: bool, cut_off: bool = False
    ) -> InstanceCheck:
        """Kept instances in order, per-instance drops, and the task's verdict.

        `cut_off`: the reply these instances were read from stopped at its length limit and its last
        instance is still here (the parser did not split it off), so that one is cut.
        """
        if not instances:
            return InstanceCheck(kept=[], dropped=[], task_verdict=drop(EMPTY_OUTPUT, "no instances"))
        facts = task_facts(instruction, is_classification, self.prompt_text)
        last = len(instances) - 1
        seen: set[tuple[str, str]] = set()
        kept: list[Instance] = []
        dropped: list[tuple[Instance, Verdict]] = []
        for position, instance in enumerate(instances):
            verdict = self._instance_verdict(facts, instance, seen, cut_off and position == last)
            if verdict.keep:
                kept.append(instance)
            else:
                dropped.append((instance, verdict))
        complete = instances[:last] if cut_off else instances
        conflict = conflicting_outputs(complete) if self.rules.conflicting_outputs and len(complete) > 1 else KEEP
        if not conflict.keep:
            return InstanceCheck(kept=[], dropped=dropped + [(i, conflict) for i in kept], task_verdict=conflict)
        return InstanceCheck(kept=kept, dropped=dropped, task_verdict=KEEP if kept else _none_left(dropped))

    def _instance_verdict(
        self, facts: TaskFacts, instance: Instance, seen: set[tuple[str, str]], cut_off: bool
    ) -> Verdict:
        if not instance.output.strip():
            return drop(EMPTY_OUTPUT)
        key = (normalise(instance.input), normalise(instance.output))
        if key in seen:
            return drop(INSTANCE_REPEATED, "the same input and output as an earlier instance")
        seen.add(key)
        if self.rules.input_is_output and key[0] == key[1] and not facts.asks_copy:
            return drop(INSTANCE_INPUT_IS_OUTPUT, _short(instance.output))
        if self.rules.ends_with_colon and not cut_off:
            for name, text in (("input", instance.input), ("output", instance.output)):
                if ends_with_colon(text):
                    return drop(INSTANCE_ENDS_WITH_COLON, f"{name} ends with {_short(text, tail=True)}")
        return self.answers.check(facts, instance, cut_off)


def ends_with_colon(text: str) -> bool:
    """A text that ends with a colon ("Here are the steps:"): cut off before its content.

    Not when the colons are the content: a last line with other colons ("Instability : Turmoil ::
    Change :") or every line ending with one (headings to fill: "Atheism:\nChristianity:"), as two of
    Self-Instruct's own seed tasks have.
    """
    text = text.rstrip()
    if not text.endswith(":"):
        return False
    lines = [line.rstrip() for line in text.split("\n") if line.strip()]
    if lines[-1].count(":") > 1:
        return False
    return len(lines) == 1 or not all(line.endswith(":") for line in lines)


def conflicting_outputs(instances: Sequence[Instance]) -> Verdict:
    """A drop of the whole task when one non-empty input has two different outputs."""
    outputs: dict[str, str] = {}
    for instance in instances:
        given, answer = normalise(instance.input), normalise(instance.output)
        if not given or not answer:
            continue  # no-input instances of one task may well differ
        earlier = outputs.setdefault(given, answer)
        if earlier != answer:
            return drop(CONFLICTING_OUTPUTS, f"input {_short(given)} has outputs {_short(earlier)} and {_short(answer)}")
    return KEEP


def _none_left(dropped: list[tuple[Instance, Verdict]]) -> Verdict:
    """The task-level drop when no instance passed: the commonest instance reason, with the tally."""
    tally = Counter(verdict.reason for _, verdict in dropped)
    reason = tally.most_common(1)[0][0] or EMPTY_OUTPUT
    detail = ", ".join(f"{count} {name}" for name, count in tally.most_common())
    return drop(reason, f"no instance left ({detail}): {dropped[0][1].detail}".rstrip(": "))


@lru_cache(maxsize=16)
def task_checker(config: FilterConfig, prompt_text: tuple[str, ...] = ()) -> TaskChecker:
    """The compiled checker of a config (configs are frozen, so one per distinct config)."""
    return TaskChecker(config, prompt_text)


def check_task(
    instruction: str, instances: Sequence[Instance], is_classification: bool, config: FilterConfig,
    cut_off: bool = False, prompt_text: tuple[str, ...] = (),
) -> InstanceCheck:
    """Run one task's instances through the instance filters and answer checks of `config`.

    `prompt_text`: clauses of the prompts that asked for the task; an answer holding one copied the prompt.
    """
    return task_checker(config, prompt_text).check(instruction, instances, is_classification, cut_off)


def _short(text: str, limit: int = 40, tail: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = "…" + text[-(limit - 1):] if tail else text[: limit - 1] + "…"
    return repr(text)
