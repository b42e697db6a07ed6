"""How the fake teacher writes a reply's items: the reply styles of real base and chat models.

- `plain`: the prompt's own layout, continued as a base model does.
- `chatty`: a chat answer: a preamble (with or without a colon), markdown (bold labels, `**Task 9:**`, numbered
  lists with a bold verb), a sign-off.
- `code`: answers that are code, fenced or indented, with `output = ...` lines and comments holding colons.
- `json`: the items as a JSON body, bare or in a ```json fence, sometimes after a preamble.
- `mixed`: each reply one of the above, drawn with the reply's seeded rng.
Pure: items and rng in, text out. The expected items are what `parse` must read back.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from selfinstruct.generate.prompts import NO_INPUT

STYLES = ("plain", "chatty", "code", "json", "mixed")
_DRAWN = ("plain", "chatty", "code", "json")

PREAMBLES = (
    "Sure! Here are {n} new tasks.",
    "Certainly! Here is the list continued with new tasks:",
    "Here are some more tasks:",
    "Okay, I'll continue the numbered list.",
    "Of course! Here are a few examples for this task:",
    "Sure, here are the examples you asked for.",
)
SIGNOFFS = (
    "I hope these help!",
    "Let me know if you would like more tasks!",
    "Feel free to ask for more examples.",
    "Hope this helps!",
)
# Code answers a model writes: `output = ...` lines and comments with colons, which must never start a field.
CODE_ANSWERS = (
    "def sort_items(items):\n    output = sorted(items)  # note: stable\n    return output",
    "def count_words(text):\n    output = {}\n    for word in text.split():\n"
    "        output[word] = output.get(word, 0) + 1\n    return output",
    "def clean(values):\n    # Input: a list of strings; Output: the list without blanks\n"
    "    output = [value.strip() for value in values if value.strip()]\n    return output",
    "totals = {}\nfor row in rows:\n    label: str = row['label']\n    totals[label] = totals.get(label, 0) + 1\n"
    "output = max(totals, key=totals.get)",
)


@dataclass(frozen=True)
class Items:
    """What one reply says, whatever its style."""

    texts: tuple[str, ...] = ()  # instructions (instruction lists, Alpaca tasks)
    pairs: tuple[tuple[str, str], ...] = ()  # (input, output), or (label, input) for output-first instances
    first_number: int = 1  # the number the prompt's open item carries
    answer: bool = False  # the classification answer
    code: bool = False  # the task asks about code


def render(kind: str, items: Items, rng: random.Random, style: str) -> str:
    """The reply text of `items` for a request of `kind`, in `style`."""
    if style == "mixed":
        style = rng.choice(_DRAWN)
    if style == "code" and kind in {"instances", "alpaca"}:
        items = _with_code_answers(items, rng)
    if style == "json":
        return _json(kind, items, rng)
    chatty = style == "chatty" or (style == "code" and rng.random() < 0.5)
    return _RENDERERS[kind](items, rng, chatty)


def _with_code_answers(items: Items, rng: random.Random) -> Items:
    pairs = []
    for given, _ in items.pairs:
        code = rng.choice(CODE_ANSWERS)
        if rng.random() < 0.5:
            answer = f"Here is one way to do it:\n```python\n{code}\n```"
        else:  # an indented block after a blank line, as markdown writes code without a fence
            answer = "This version works:\n\n" + "\n".join(f"    {line}" for line in code.split("\n"))
        pairs.append((given, answer))
    return Items(texts=items.texts, pairs=tuple(pairs), first_number=items.first_number, code=True)


def _frame(body: str, rng: random.Random, count: int) -> str:
    """A chat answer around `body`: a preamble, and a sign-off most of the time."""
    preamble = rng.choice(PREAMBLES).format(n=count)
    parts = [preamble, rng.choice(("\n\n", "\n")), body]
    if rng.random() < 0.7:
        parts += ["\n\n", rng.choice(SIGNOFFS)]
    return "".join(parts)


def _instructions(items: Items, rng: random.Random, chatty: bool) -> str:
    number = items.first_number
    if not chatty:
        # The prompt ends with "Task N:", so the first new task carries no number.
        lines = [" " + items.texts[0]] + [f"Task {number + k}: {text}" for k, text in enumerate(items.texts[1:], 1)]
        return "\n".join(lines)
    layout = rng.choice(("task", "bold_task", "bold_verb"))
    lines = []
    for k, text in enumerate(items.texts):
        verb, _, rest = text.partition(" ")
        lines.append({"task": f"Task {number + k}: {text}", "bold_task": f"**Task {number + k}:** {text}",
                      "bold_verb": f"{k + 1}. **{verb}** {rest}"}[layout])
    return _frame("\n".join(lines), rng, len(items.texts))


def _classify(items: Items, rng: random.Random, chatty: bool) -> str:
    if not chatty:
        return " Yes" if items.answer else " No"
    if items.answer:
        return rng.choice(("Yes. The task asks for one label from a fixed set.", "**Yes**", "Classification: Yes"))
    return rng.choice(("No, this is an open-ended task with many good answers.", "**No**", "Classification: No"))


def _instances(items: Items, rng: random.Random, chatty: bool) -> str:
    blocks = []
    for number, (given, output) in enumerate(items.pairs, start=1):
        shown = given or NO_INPUT
        if chatty:
            blocks.append(f"**Example {number}**\n**Input:** {shown}\n**Output:**\n{output}")
        else:
            blocks.append(f"Example {number}\nInput: {shown}\nOutput: {output}")
    body = ("\n\n" if chatty else "\n").join(blocks)
    return _frame(body, rng, len(blocks)) if chatty else body


def _labels(items: Items, rng: random.Random, chatty: bool) -> str:
    # Numbered as the prompt's demos are ("Label 1:"), so a request's stop after the last kept label applies.
    if chatty:
        body = "\n\n".join(f"**Label {n}:** {label}\n**Input:** {given}"
                           for n, (label, given) in enumerate(items.pairs, start=1))
        return _frame(body, rng, len(items.pairs))
    return "\n".join(f"Label {n}: {label}\nInput: {given}" for n, (label, given) in enumerate(items.pairs, start=1))


def _alpaca(items: Items, rng: random.Random, chatty: bool) -> str:
    blocks = []
    for offset, (text, (given, output)) in enumerate(zip(items.texts, items.pairs)):
        shown = given or NO_INPUT
        if chatty:
            blocks.append(f"### Task {items.first_number + offset}\n**Instruction:** {text}\n**Input:** {shown}\n"
                          f"**Output:** {output}")
            continue
        block = f"Instruction: {text}\nInput: {shown}\nOutput: {output}"
        # The prompt ends with "### Task N", so the first block carries no header.
        blocks.append(block if offset == 0 else f"### Task {items.first_number + offset}\n{block}")
    body = "\n\n".join(blocks)
    return _frame(body, rng, len(blocks)) if chatty else body


def _json(kind: str, items: Items, rng: random.Random) -> str:
    if kind == "instructions":
        value: object = list(items.texts) if rng.random() < 0.5 else {"tasks": [{"task": t} for t in items.texts]}
    elif kind == "classify":
        value = {"classification": "Yes" if items.answer else "No"}
    elif kind == "instances":
        value = [{"input": given, "output": output} for given, output in items.pairs]
    elif kind == "labels":
        value = {"instances": [{"label": label, "input": given} for label, given in items.pairs]}
    else:
        value = [{"instruction": text, "input": given, "output": output}
                 for text, (given, output) in zip(items.texts, items.pairs)]
    body = json.dumps(value, ensure_ascii=False, indent=rng.choice((None, 2)))
    if rng.random() < 0.5:
        return body
    return f"Here is the answer in JSON format:\n```json\n{body}\n```"


_RENDERERS = {"instructions": _instructions, "classify": _classify, "instances": _instances, "labels": _labels,
              "alpaca": _alpaca}
