"""Prompt text for every request the pipeline sends. Pure: values in, strings out.

The wording is ours. Each prompt works for both APIs: a base model continues
the text (completions); an instruct model gets it as one user message (chat)
and answers in the same format, which `parse` reads either way.
"""

from __future__ import annotations

import re
from functools import cache
from collections.abc import Sequence

from ..core.records import Instance, SeedTask
from ..core.sanitize import sanitize_line, sanitize_text

NO_INPUT = "<none>"

# A line that reads as an Alpaca item header ("### Task 9"), the shape `parse` splits replies on.
_ITEM_HEADER = re.compile(r"^[ \t]*#{2,}[ \t]*((?:task[ \t]*)?\d*[ \t]*[:.]?)[ \t]*$", re.IGNORECASE | re.MULTILINE)

_INSTRUCTION_HEADER = (
    "Below is a numbered list of tasks that people ask a helpful assistant to do. "
    "Every task is a single, self-contained instruction written in plain text. "
    "The tasks vary in topic, in wording and in kind: writing, rewriting, answering, "
    "explaining, classifying, calculating, coding, planning. "
    "Continue the list with new tasks that are unlike the ones already there, "
    "one task per line, numbered in the same way."
)

_CLASSIFY_HEADER = (
    "Decide whether each task is a classification task, meaning that its answer is "
    "one label chosen from a small, fixed set of options. Answer Yes or No."
)

# Few-shot examples for the classification question, written for this project.
_CLASSIFY_EXAMPLES: tuple[tuple[str, bool], ...] = (
    ("Tell whether this customer review is positive, negative or mixed.", True),
    ("Suggest five names for a small bakery that sells sourdough bread.", False),
    ("Is the following statement a fact or an opinion?", True),
    ("Explain how a bicycle gear works to a ten-year-old.", False),
    ("Label the programming language of the code snippet: Python, Java, C or Rust.", True),
    ("Rewrite the paragraph so that it sounds more formal.", False),
    ("Given a math equation, say whether it has a solution among the integers.", True),
    ("Plan a three-day trip to a coastal town on a small budget.", False),
)

_INSTANCE_HEADER = (
    "For each task below, write examples that show how to do it well. An example has an "
    f"input and the correct output. When the task needs no input, write 'Input: {NO_INPUT}'."
)

_OUTPUT_FIRST_HEADER = (
    "Each task below asks for a label. For each task, list the possible labels, and for "
    "each label write an input that has that label."
)

_INSTANCE_DEMOS: tuple[tuple[str, tuple[Instance, ...]], ...] = (
    (
        "Turn the sentence into the passive voice.",
        (Instance(input="The committee approved the budget.", output="The budget was approved by the committee."),),
    ),
    (
        "Give two practical tips for sleeping better.",
        (Instance(input="", output="1. Go to bed at the same time every night.\n2. Keep screens out of the bedroom for the last hour of the day."),),
    ),
    (
        "Find the sum of the even numbers in the list.",
        (
            Instance(input="3, 8, 10, 7, 2", output="20"),
            Instance(input="1, 5, 9", output="0"),
        ),
    ),
)

_OUTPUT_FIRST_DEMOS: tuple[tuple[str, tuple[Instance, ...]], ...] = (
    (
        "Decide whether the email is spam or not spam.",
        (
            Instance(input="Congratulations! You have won a free cruise. Reply with your bank details.", output="Spam"),
            Instance(input="Hi Ana, the meeting moved to 3 pm on Thursday. See you there.", output="Not spam"),
        ),
    ),
    (
        "Say whether the number is prime or composite.",
        (Instance(input="17", output="Prime"), Instance(input="21", output="Composite")),
    ),
)

_ALPACA_HEADER = (
    "You are helping build a training set for an assistant. Write {count} new tasks. "
    "Each task has an instruction, an input and an output.\n"
    "Rules:\n"
    "- Vary the verbs, the topics and the kinds of task (open questions, writing, editing, "
    "classification, reasoning, coding, maths, advice).\n"
    "- Mix the styles: some instructions are questions, some are imperatives.\n"
    "- A language model must be able to do the task with text alone: nothing visual or audible, "
    "no browsing, no actions in the world.\n"
    "- Instructions are one or two sentences. The input is a realistic, specific text of at most "
    f"100 words, or {NO_INPUT} when the instruction needs none.\n"
    "- The output is a correct, complete answer of at most 100 words.\n"
    "Use exactly this layout for every task:"
)

# Every prompt's opening words: a reply that repeats them is echoing the prompt (`parse` drops it).
PROMPT_HEADERS = (_INSTRUCTION_HEADER, _CLASSIFY_HEADER, _INSTANCE_HEADER, _OUTPUT_FIRST_HEADER, _ALPACA_HEADER)


def render_instruction_prompt(instructions: Sequence[str]) -> str:
    """A list of demo instructions, ending where the next task number starts."""
    lines = [_INSTRUCTION_HEADER, ""]
    lines += [f"Task {number}: {_one_line(text)}" for number, text in enumerate(instructions, start=1)]
    lines.append(f"Task {len(instructions) + 1}:")
    return "\n".join(lines)


def render_classify_prompt(instruction: str) -> str:
    """Few-shot question: is this a classification task?"""
    parts = [_CLASSIFY_HEADER, ""]
    for text, is_classification in _CLASSIFY_EXAMPLES:
        parts += [f"Task: {text}", f"Classification: {'Yes' if is_classification else 'No'}", ""]
    parts += [f"Task: {_one_line(instruction)}", "Classification:"]
    return "\n".join(parts)


def render_instance_prompt(instruction: str, is_classification: bool) -> str:
    """Input-first examples, or output-first (label, then input) for classification tasks."""
    if is_classification:
        header, demos, render = _OUTPUT_FIRST_HEADER, _OUTPUT_FIRST_DEMOS, _render_output_first
    else:
        header, demos, render = _INSTANCE_HEADER, _INSTANCE_DEMOS, _render_input_first
    parts = [header, ""]
    for text, instances in demos:
        parts += [f"Task: {text}", render(instances), ""]
    parts.append(f"Task: {_one_line(instruction)}")
    return "\n".join(parts)


def _render_input_first(instances: Sequence[Instance]) -> str:
    blocks = []
    for number, instance in enumerate(instances, start=1):
        shown_input = instance.input or NO_INPUT
        blocks.append(f"Example {number}\nInput: {shown_input}\nOutput: {instance.output}")
    return "\n".join(blocks)


def _render_output_first(instances: Sequence[Instance]) -> str:
    # Numbered, so a request can stop after the last label it will keep ("Label 3:" when it keeps two).
    return "\n".join(f"Label {number}: {instance.output}\nInput: {instance.input}"
                     for number, instance in enumerate(instances, start=1))


def is_output_first(prompt: str) -> bool:
    """Whether an instance prompt asks for labels first (a classification task's)."""
    return prompt.startswith(_OUTPUT_FIRST_HEADER)


def instance_stops(is_classification: bool, keep: int) -> tuple[str, ...]:
    """Where an instance reply may end: after the `keep`-th example (or label), or where another task starts."""
    return ("\nTask:", f"Label {keep + 1}:" if is_classification else f"Example {keep + 1}")


def alpaca_stop(demos: int, count: int) -> str:
    """Where an Alpaca reply may end: the header of the task after the `count` asked for."""
    return f"### Task {demos + count + 1}"


def render_alpaca_prompt(demos: Sequence[SeedTask], count: int) -> str:
    """One prompt asking for `count` complete tasks, after numbered seed demos."""
    parts = [_ALPACA_HEADER.format(count=count), ""]
    for number, task in enumerate(demos, start=1):
        instance = task.instances[0]
        parts += [
            f"### Task {number}",
            f"Instruction: {_one_line(task.instruction)}",
            f"Input: {_demo_block(instance.input) or NO_INPUT}",
            f"Output: {_demo_block(instance.output)}",
            "",
        ]
    parts.append(f"### Task {len(demos) + 1}")
    return "\n".join(parts)


# Structured (JSON) replies: each stage's prompt names the object to answer with. The schema itself travels in
# the request's response_format; a model still writes better JSON when the prompt shows the shape.
# No "..." stands in for a value: small models copy it into their answer (measured with the bundled model).
_STRUCTURED_ASK = {
    "instructions": 'Write {count} new tasks for this list. Reply with a JSON object whose "instructions" list '
                    'holds the new tasks, each a complete instruction in plain text.',
    "classify": 'Reply with a JSON object whose "classification" is "Yes" or "No".',
    "instances": 'Write up to {count} examples for the last task. Reply with a JSON object whose "instances" list '
                 'holds them, each with an "input" ("" when the task needs none) and the correct "output".',
    "labels": 'Write up to {count} labels for the last task, each with an input that has it. Reply with a JSON '
              'object whose "instances" list holds them, each with a "label" and an "input".',
    "alpaca": 'Reply with a JSON object whose "tasks" list holds the new tasks, each with an "instruction", an '
              '"input" ("" when the instruction needs none) and an "output".',
}


def structured_prompt(prompt: str, kind: str, count: int = 0) -> str:
    """`prompt` ending in a request for the stage's JSON object instead of an open item to continue.

    `kind` is a stage ("instructions", "classify", "instances", "alpaca") or "labels" (output-first instances).
    """
    body = prompt.rstrip()
    last = body.rsplit("\n", 1)[-1]
    if kind in {"instructions", "alpaca", "classify"} and re.fullmatch(r"(?:#+ *)?(?:Task \d*|Classification):?", last):
        body = body.rsplit("\n", 1)[0].rstrip()  # the open "Task 9:" a base model would continue
    return f"{body}\n\n{_STRUCTURED_ASK[kind].format(count=count)}"


def _one_line(text: str) -> str:
    """Demo instructions are shown on one line, so nothing in them can start a new item."""
    return sanitize_line(text)


def _demo_block(text: str) -> str:
    """A multi-line demo field (Alpaca input, output): its lines stay, but none can pose as an item header."""
    text = sanitize_text(text)
    return _ITEM_HEADER.sub(r"\1", text)


_WORD = re.compile(r"\w+")
_CLAUSE = re.compile(r"[.,:;!?\n]")
# Shorter clauses of our headers ("an input and an output") are ordinary prose an answer may well say.
_FRAGMENT_MIN_WORDS = 6


@cache
def prompt_fragments() -> tuple[str, ...]:
    """Clauses of at least six words from our prompt headers, lower-cased with single spaces.

    Read from the rendered prompts, so they follow any change to the wording. An output holds one
    when it copies the header (case and spacing aside); clauses with digits ("write 20 new tasks")
    vary per prompt and are left out.
    """
    rendered = (
        render_instruction_prompt([]), render_classify_prompt(""),
        render_instance_prompt("", False), render_instance_prompt("", True),
        render_alpaca_prompt([], 20),
    )
    fragments: set[str] = set()
    for prompt in rendered:
        header = prompt.split("\n\n", 1)[0]
        for clause in _CLAUSE.split(header.lower()):
            words = _WORD.findall(clause)
            if len(words) >= _FRAGMENT_MIN_WORDS and not any(word.isdigit() for word in words):
                fragments.add(" ".join(clause.split()).strip(" '\"()-"))
    return tuple(sorted(fragments))
