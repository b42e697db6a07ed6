"""Answer checks: does an instance's output say something a trainer should learn?

Pure and cheap. `AnswerChecks(config)` compiles the enabled checks once; `facts(instruction)` reads what the
checks need from an instruction once per task (does it ask for a template, a refusal, another language...),
and `check(facts, instance)` runs the checks on one instance in microseconds, first drop wins. Every
check has an exemption read from the instruction, so a task that asks for the thing a check looks for keeps
its answer: placeholders in a template, repetition in a chant, another script in a translation.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from ..core.config import AnswerCheckConfig
from ..core.records import Instance
from . import answer_patterns as pat
from .base import (
    ANSWER_CUT_OFF, ANSWER_MISSING_INPUT, ANSWER_NO_INPUT_MARKER, ANSWER_PLACEHOLDER, ANSWER_PROMPT_LEAK,
    ANSWER_REFUSAL, ANSWER_REPETITION, ANSWER_RESTATES_INSTRUCTION, ANSWER_WRONG_SCRIPT, KEEP, Verdict, drop,
)

_WORD = re.compile(r"\w+")
_SCRIPT_STARTS = [start for start, _, _ in pat.SCRIPT_RANGES]
# A script counts as the instruction's (or input's) own from this share of its letters.
_OWN_SCRIPT_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What the checks read from one instruction, computed once per task."""

    instruction: str
    lowered: str
    normalised: str
    tokens: tuple[str, ...]
    padded: str
    is_classification: bool
    asks_refusal: bool
    mentions_ai: bool
    asks_template: bool
    code_task: bool
    asks_repetition: bool
    asks_copy: bool
    asks_language: bool
    input_pointer: str | None
    scripts: frozenset[str]
    copied_prompt: str | None


class OutputView:
    """One output, in the forms the checks read, each computed at most once per instance."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = text.lower()
        self.words = self.lowered.split()
        self.normalised = " ".join(self.words)
        self.prose = text  # the output without fenced or inline code
        if "`" in text or "~~~" in text:
            self.prose = pat.INLINE_CODE.sub(" ", pat.FENCED.sub(" ", text))
        self.prose_lowered = self.lowered if self.prose is text else self.prose.lower()
        self.code_like = self.prose is not text or looks_like_code(self.prose)

    @cached_property
    def tokens(self) -> list[str]:
        return _WORD.findall(self.lowered)


Check = Callable[[TaskFacts, Instance, OutputView], Verdict]


def task_facts(instruction: str, is_classification: bool = False, prompt_text: tuple[str, ...] = ()) -> TaskFacts:
    """`prompt_text`: clauses of the prompts that asked for the task (`generate.prompts.prompt_fragments`)."""
    lowered = instruction.lower()
    tokens = tuple(_WORD.findall(lowered))
    padded = f" {' '.join(tokens)} "
    normalised = " ".join(lowered.split())
    asks = pat.INSTRUCTION_TERMS.names(tokens, padded, lowered)
    return TaskFacts(
        instruction=instruction, lowered=lowered, normalised=normalised, tokens=tokens,
        padded=padded, is_classification=is_classification, asks_refusal="refusal" in asks,
        mentions_ai="ai" in asks, asks_template="template" in asks, code_task="code" in asks,
        asks_repetition="repetition" in asks, asks_copy="copy" in asks, asks_language="language" in asks,
        input_pointer=input_pointer(instruction, lowered) if "pointer" in asks else None,
        scripts=own_scripts(instruction),
        copied_prompt=next((fragment for fragment in prompt_text if fragment in normalised), None),
    )


def input_pointer(instruction: str, lowered: str) -> str | None:
    """The words by which an instruction points at an input it does not itself contain, if any.

    "Write a funny interview question. Why did you choose this question?" points back at its own
    output: a pointer whose noun the instruction already named earlier does not count.
    """
    for pointer in pat.POINTS_AT_INPUT.finditer(lowered):
        nouns = pat.INPUT_NOUN.findall(pointer.group(0))
        if nouns and nouns[-1][:4] in lowered[: pointer.start()]:
            continue
        return None if pat.INLINE_CONTENT.search(instruction.strip()) else pointer.group(0).strip()
    return None


def looks_like_code(text: str) -> bool:
    """A line that reads as code: `def f(`, an import, an assignment, a line ending in ; { or }."""
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith(pat.CODE_PREFIXES) or line[-1] in ";{}" or pat.CODE_START.match(line):
            return True
    return False


def output_view(text: str) -> OutputView:
    return OutputView(text)


def is_code_like(text: str) -> bool:
    """Fenced or inline code, or lines that read as code (def, imports, assignments, lines ending in ; or {)."""
    return OutputView(text).code_like


class AnswerChecks:
    """The enabled answer checks, compiled once from the config."""

    def __init__(self, config: AnswerCheckConfig, prompt_text: tuple[str, ...] = ()) -> None:
        self.config = config
        self.extra_refusals = pat.words_pattern(config.extra_refusal_phrases) if config.extra_refusal_phrases else None
        self.fragments = prompt_text  # an output holding one copied our prompt
        enabled: list[tuple[bool, Check]] = [
            (config.no_input_marker, self._no_input_marker), (config.refusal, self._refusal),
            (config.prompt_leak, self._prompt_leak), (config.restates_instruction, self._restates),
            (config.placeholder, self._placeholder), (config.missing_input, self._missing_input),
            (config.repetition, self._repetition), (config.script, self._script),
        ]
        self.checks = [check for on, check in enabled if on]

    def check(self, facts: TaskFacts, instance: Instance, cut_off: bool = False) -> Verdict:
        """KEEP, or the first check that drops `instance`; `cut_off`: its output stopped at the length limit."""
        if cut_off and self.config.cut_off:
            return drop(ANSWER_CUT_OFF, "the reply stopped at its length limit inside this output")
        view = OutputView(instance.output)
        for check in self.checks:
            verdict = check(facts, instance, view)
            if not verdict.keep:
                return verdict
        return KEEP

    def _no_input_marker(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if view.normalised in pat.NO_INPUT_OUTPUTS and view.normalised not in facts.lowered:
            return drop(ANSWER_NO_INPUT_MARKER, f"the whole output is {instance.output.strip()!r}")
        tag = pat.NO_INPUT_TAG.search(view.prose) if "<" in view.prose else None
        if tag and tag.group(0).lower() not in facts.lowered:
            return drop(ANSWER_NO_INPUT_MARKER, f"{tag.group(0)!r} in the output")
        return KEEP

    def _refusal(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        lowered = view.lowered
        found = self.extra_refusals.search(lowered) if self.extra_refusals else None
        if found is None and not facts.mentions_ai and any(hint in lowered for hint in pat.DISCLAIMER_HINTS):
            found = pat.DISCLAIMER.search(lowered)
        if found is None and not facts.asks_refusal:
            found = pat.OPENING_REFUSAL.match(lowered, 0, pat.OPENING_CHARS)
            opening = lowered[: pat.NOTHING_GIVEN_CHARS]
            if found is None and any(hint in opening for hint in pat.NOTHING_GIVEN_HINTS):
                found = pat.NOTHING_GIVEN.search(opening)
        if found is None:
            return KEEP
        source = view.text if len(view.text) == len(lowered) else lowered  # lower() may change lengths
        return drop(ANSWER_REFUSAL, _quote(source[found.start():found.end()]))

    def _prompt_leak(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if facts.copied_prompt:  # the task itself is our prompt's header, parsed as an instruction
            return drop(ANSWER_PROMPT_LEAK, f"the instruction copies prompt text {facts.copied_prompt.strip()!r}")
        for fragment in self.fragments:
            if fragment in view.normalised:
                return drop(ANSWER_PROMPT_LEAK, f"prompt text {fragment!r}")
        leaked = pat.INPUT_ITEM_MARKER.search(instance.input.lower()) if instance.input else None
        if leaked and leaked.group(1) not in facts.lowered:
            return drop(ANSWER_PROMPT_LEAK, f"input holds item marker {_quote(leaked.group(0))}")
        if view.code_like:
            return KEEP  # "Input:" lines and numbered examples are common in docstrings and comments
        prose = view.prose_lowered
        markers = []
        if "task" in prose or "example" in prose:
            markers.append(pat.ITEM_MARKER)
        if ":" in prose and any(hint in prose for hint in pat.FIELD_HINTS):
            markers.append(pat.FIELD_LINE)
        for pattern in markers:
            for marker in pattern.finditer(prose):
                if (marker.group(1) or marker.group(2)) not in facts.lowered:
                    return drop(ANSWER_PROMPT_LEAK, f"item marker {_quote(marker.group(0).strip())}")
        return KEEP

    def _restates(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if facts.is_classification or facts.asks_copy:
            return KEEP
        if view.normalised == facts.normalised:
            return drop(ANSWER_RESTATES_INSTRUCTION, "the output is the instruction")
        if not 0.5 * len(facts.tokens) <= len(view.words) <= 2 * len(facts.tokens):
            return KEEP  # a cheap bound before counting words
        out, ins = view.tokens, facts.tokens
        if len(ins) < 3 or not 0.67 * len(ins) <= len(out) <= 1.5 * len(ins):
            return KEEP
        overlap = sum((Counter(out) & Counter(ins)).values())
        f1 = 2 * overlap / (len(out) + len(ins))
        if f1 >= self.config.restate_similarity:
            return drop(ANSWER_RESTATES_INSTRUCTION, f"word overlap F1 {f1:.2f} with the instruction")
        return KEEP

    def _placeholder(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if facts.asks_template or facts.code_task or view.code_like:
            return KEEP  # brackets and braces in code are syntax, and a template's blanks are its point
        prose = view.prose
        for opener, pattern in pat.PLACEHOLDERS:
            found = pattern.search(prose) if opener in prose else None
            if found:
                return drop(ANSWER_PLACEHOLDER, _quote(found.group(0)))
        if "lorem ipsum" in view.prose_lowered:
            return drop(ANSWER_PLACEHOLDER, "'lorem ipsum'")
        for blank in pat.BLANK_X.finditer(prose) if "XXX" in prose else ():
            before = prose[max(0, blank.start() - 12):blank.start()].lower().split()
            if not (len(blank.group(0)) == 3 and before and before[-1].strip(".,") in pat.ROMAN_CONTEXT):
                return drop(ANSWER_PLACEHOLDER, _quote(blank.group(0)))
        return KEEP

    def _missing_input(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if facts.input_pointer is None or instance.input.strip():
            return KEEP
        if view.code_like and facts.code_task:
            return KEEP  # "write a function to reverse the string": the string is the function's argument
        return drop(ANSWER_MISSING_INPUT, f"the instruction says {facts.input_pointer!r} but the input is empty")

    def _repetition(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if facts.asks_repetition:
            return KEEP
        config, words = self.config, view.words
        n = config.repetition_ngram
        if len(words) >= max(config.repetition_min_words, n + 1):
            grams = len(words) - n + 1
            # An n-gram repeats only where its first word does: the repeated words bound the share.
            if (len(words) - len(set(words))) / grams > config.repetition_max_share:
                share = 1 - len(set(zip(*(words[i:] for i in range(n))))) / grams
                if share > config.repetition_max_share:
                    return drop(ANSWER_REPETITION, f"{share:.0%} of its word {n}-grams are repeats")
        if view.text.count("\n") >= config.line_repeat_max:
            lines = Counter(" ".join(line.split()) for line in view.lowered.split("\n") if line.count(" ") >= 2)
            line, times = lines.most_common(1)[0] if lines else ("", 0)
            if times > config.line_repeat_max and len(line.split()) >= 3:
                return drop(ANSWER_REPETITION, f"line repeated {times} times: {_quote(line)}")
        return KEEP

    def _script(self, facts: TaskFacts, instance: Instance, view: OutputView) -> Verdict:
        if facts.asks_language or view.code_like or not facts.scripts:
            return KEEP
        allowed = facts.scripts | own_scripts(instance.input) if instance.input else facts.scripts
        if view.text.isascii() and "latin" in allowed:
            return KEEP  # the common case, decided without counting
        counts = script_counts(view.text)
        letters = sum(counts.values())
        if letters < self.config.script_min_letters:
            return KEEP
        share = sum(counts.get(script, 0) for script in allowed) / letters
        if share < self.config.script_min_share:
            main = max(counts, key=counts.__getitem__)
            return drop(ANSWER_WRONG_SCRIPT, f"output {counts[main] / letters:.0%} {main}; instruction "
                                             f"{'/'.join(sorted(allowed))}")
        return KEEP


def script_counts(text: str) -> dict[str, int]:
    """Letters per script (ASCII letters count as Latin); letters of unlisted scripts are not counted."""
    counts: dict[str, int] = {}
    latin = len(pat.ASCII_LETTERS.findall(text))
    if latin:
        counts["latin"] = latin
    if not text.isascii():
        for char in pat.NON_ASCII.findall(text):
            code = ord(char)
            index = bisect.bisect_right(_SCRIPT_STARTS, code) - 1
            if index >= 0 and code <= pat.SCRIPT_RANGES[index][1] and char.isalpha():
                script = pat.SCRIPT_RANGES[index][2]
                counts[script] = counts.get(script, 0) + 1
    return counts


def own_scripts(text: str) -> frozenset[str]:
    """The scripts that hold at least a fifth of a text's letters."""
    if text.isascii():
        return frozenset({"latin"}) if pat.ASCII_LETTERS.search(text) else frozenset()
    counts = script_counts(text)
    letters = sum(counts.values())
    return frozenset(script for script, count in counts.items() if count >= _OWN_SCRIPT_SHARE * letters)


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
