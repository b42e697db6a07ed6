"""Replies a cooperative teacher might give to each of our prompts. Pure: prompt and rng in, text out.

The request kind comes from the prompt's opening words (the headers in `prompts`). The items of a reply
(instructions, examples, labels, tasks) are drawn here; `fake_styles` writes them out the way a base model
continues the prompt (`plain`) or the way chat models answer it (`chatty`, `code`, `json`, `mixed`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

from selfinstruct.generate.prompts import (
    _ALPACA_HEADER, _CLASSIFY_HEADER, _INSTANCE_HEADER, _INSTRUCTION_HEADER, _OUTPUT_FIRST_HEADER,
)
from . import fake_vocab as v
from .fake_instructions import make_instruction
from .fake_styles import Items, render

INSTRUCTIONS = "instructions"
CLASSIFY = "classify"
INSTANCES = "instances"
LABELS = "labels"  # output-first instances, for classification tasks
ALPACA = "alpaca"
UNKNOWN = "unknown"
KINDS = (INSTRUCTIONS, CLASSIFY, INSTANCES, LABELS, ALPACA, UNKNOWN)

# The first 40 characters tell the prompts apart and survive edits to the rest of a header.
_PREFIX_LENGTH = 40
_PREFIXES = {
    header[:_PREFIX_LENGTH]: kind
    for header, kind in (
        (_INSTRUCTION_HEADER, INSTRUCTIONS), (_CLASSIFY_HEADER, CLASSIFY), (_INSTANCE_HEADER, INSTANCES),
        (_OUTPUT_FIRST_HEADER, LABELS), (_ALPACA_HEADER, ALPACA),
    )
}

_CODE_SNIPPETS = (
    "def average(xs):\n    return sum(xs) / len(xs) + 1",
    "for i in range(1, 10):\n    if i % 2 = 0:\n        print(i)",
    "function greet(name) {\n  return 'Hello, ' + nam;\n}",
    "SELECT name, COUNT(*) FROM orders GROUP BY country;",
)

_CLASSIFICATION_WORDS = re.compile(
    r"\b(classif\w*|categori[sz]\w*|label\w*|tag|whether|is it|spam|sentiment|true or false|yes or no"
    r"|fact or opinion|positive or negative)\b",
    re.IGNORECASE,
)
# One pass over the lowered instruction says what kind of input its examples need.
_INPUT_HINTS = re.compile(
    r"\b(?:(?P<code>code|snippet|bug)|(?P<numbers>numbers?|list of|mean|median|sum)"
    r"|(?P<text>following|given|below|this|these|the (?:" + "|".join(map(re.escape, v.TEXT_KINDS)) + r")))\b"
)
_ABOUT = re.compile(r"\babout (.+?)(?:[,.;:?]| for | as | into |$)")
_TASK_NUMBER = re.compile(r"(\d+)\s*:?\s*$")
_ALPACA_COUNT = re.compile(r"Write (\d+) new tasks")


def request_kind(prompt: str) -> str:
    return _PREFIXES.get(prompt.lstrip()[:_PREFIX_LENGTH], UNKNOWN)


def reply_for(kind: str, prompt: str, rng: random.Random, style: str = "plain") -> str:
    """The reply text for a prompt of this kind, written in `style` (one of `fake_styles.STYLES`)."""
    if kind == UNKNOWN:
        return _unknown(prompt, rng)
    return render(kind, _ITEMS[kind](prompt, rng), rng, style)


def structured_reply_for(kind: str, prompt: str, rng: random.Random) -> str:
    """The JSON object a schema-constrained teacher would answer for a prompt of this kind."""
    if kind == UNKNOWN:
        return json.dumps({"text": _unknown(prompt, rng)})
    items = _ITEMS[kind](prompt, rng)
    if kind == INSTRUCTIONS:
        value: object = {"instructions": list(items.texts)}
    elif kind == CLASSIFY:
        value = {"classification": "Yes" if items.answer else "No"}
    elif kind == INSTANCES:
        value = {"instances": [{"input": given, "output": output} for given, output in items.pairs]}
    elif kind == LABELS:
        value = {"instances": [{"label": label, "input": given} for label, given in items.pairs]}
    else:
        value = {"tasks": [{"instruction": text, "input": given, "output": output}
                           for text, (given, output) in zip(items.texts, items.pairs)]}
    return json.dumps(value, ensure_ascii=False)


def looks_like_classification(instruction: str) -> bool:
    return bool(_CLASSIFICATION_WORDS.search(instruction))


def labels_for(instruction: str, rng: random.Random) -> tuple[str, ...]:
    """The label set the instruction names, else a plausible one."""
    lowered = instruction.lower()
    named = [labels for labels in v.LABEL_SETS if all(label.lower() in lowered for label in labels)]
    named += [groups for _, groups in v.ITEM_GROUPS if all(group.lower() in lowered for group in groups)]
    if named:
        return max(named, key=len)
    if "yes or no" in lowered or "whether" in lowered:
        return ("Yes", "No")
    return rng.choice(v.LABEL_SETS)


def _instruction_items(prompt: str, rng: random.Random) -> Items:
    lines = prompt.rstrip().split("\n")
    demos = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Task ") and ":" in line]
    return Items(texts=tuple(make_instruction(rng, demos) for _ in range(rng.randint(5, 9))),
                 first_number=_trailing_number(lines[-1]))


def _trailing_number(line: str) -> int:
    match = _TASK_NUMBER.search(line)
    return int(match.group(1)) if match else 1


def _last_task(prompt: str) -> str:
    for line in reversed(prompt.rstrip().split("\n")):
        if line.startswith("Task:"):
            return line[len("Task:"):].strip()
    return ""


def _classify_items(prompt: str, rng: random.Random) -> Items:
    return Items(answer=looks_like_classification(_last_task(prompt)))


def _instance_items(prompt: str, rng: random.Random) -> Items:
    instruction = _last_task(prompt)
    return Items(pairs=tuple(_example(instruction, rng) for _ in range(rng.randint(1, 3))), code=_asks_for_code(
        instruction))


def _label_items(prompt: str, rng: random.Random) -> Items:
    labels = labels_for(_last_task(prompt), rng)
    return Items(pairs=tuple(zip(labels, rng.sample(v.INPUT_SENTENCES, len(labels)))))


def _alpaca_items(prompt: str, rng: random.Random) -> Items:
    match = _ALPACA_COUNT.search(prompt, 0, 200)
    wanted = int(match.group(1)) if match else 5
    # Real teachers sometimes stop one task early.
    count = max(1, wanted - 1 if rng.random() < 0.2 else wanted)
    demos = [line[len("Instruction:"):].strip() for line in prompt.split("\n") if line.startswith("Instruction:")]
    texts = tuple(make_instruction(rng, demos) for _ in range(count))
    last_header = next((line for line in reversed(prompt.rstrip().split("\n")) if line.startswith("### Task")), "")
    return Items(texts=texts, pairs=tuple(_example(text, rng) for text in texts),
                 first_number=_trailing_number(last_header))


def _asks_for_code(instruction: str) -> bool:
    return "code" in {match.lastgroup for match in _INPUT_HINTS.finditer(instruction.lower())}


def _example(instruction: str, rng: random.Random) -> tuple[str, str]:
    """(input, output) for a task; the kind of input follows the words of the instruction."""
    hints = {match.lastgroup for match in _INPUT_HINTS.finditer(instruction.lower())}
    if "code" in hints:
        return rng.choice(_CODE_SNIPPETS), _answer(instruction, rng)
    if "numbers" in hints:
        numbers = sorted(rng.randint(1, 99) for _ in range(rng.randint(3, 7)))
        shuffled = rng.sample(numbers, len(numbers))
        return ", ".join(map(str, shuffled)), f"The sum is {sum(numbers)} and the median is {numbers[len(numbers) // 2]}."
    if "text" in hints or rng.random() < 0.3:
        return rng.choice(v.INPUT_SENTENCES), _answer(instruction, rng)
    return "", _answer(instruction, rng)


def _answer(instruction: str, rng: random.Random) -> str:
    about = _ABOUT.search(instruction)
    focus = about.group(1) if about else " ".join(instruction.rstrip(".?!").split()[1:6]) or "this task"
    first, second = rng.sample(v.OUTPUT_FACTS, 2)
    sentences = [f"{rng.choice(v.OUTPUT_OPENERS)} {first}.", f"When it comes to {focus}, {second}."]
    if rng.random() < 0.5:
        sentences.append(f"For example, {rng.choice(v.PEOPLE)} would start with {rng.choice(v.SUBJECTS)}.")
    return " ".join(sentences)


def _unknown(prompt: str, rng: random.Random) -> str:
    return f"{rng.choice(v.OUTPUT_OPENERS)} {rng.choice(v.OUTPUT_FACTS)}."


_ITEMS: dict[str, Callable[[str, random.Random], Items]] = {
    INSTRUCTIONS: _instruction_items, CLASSIFY: _classify_items, INSTANCES: _instance_items, LABELS: _label_items,
    ALPACA: _alpaca_items,
}
