"""The fake teacher's reply styles, read back by the real parser, and grows against chat-shaped replies.

The styles write what real chat models write (preambles, sign-offs, markdown, code with `output =` lines,
JSON bodies), so a grow that only ever saw the prompt's own layout can no longer pass by construction.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfinstruct.core.config import build_config
from selfinstruct.generate.parse import parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions
from selfinstruct.grow import grow
from selfinstruct.core.records import Instance
from fakes.fake_styles import CODE_ANSWERS, PREAMBLES, SIGNOFFS, STYLES, Items, render
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

WRITTEN = [style for style in STYLES if style != "mixed"]
ITEMS = {
    "instructions": Items(texts=("Write a haiku about the first snow of the year.",
                                 "Explain how a heat pump warms a house in winter.",
                                 "List three ways to reduce food waste at home."), first_number=9),
    "instances": Items(pairs=(("3, 8, 10", "21"), ("", "A short answer that needs no input."))),
    "labels": Items(pairs=(("Spam", "You won a prize, send your bank details."), ("Not spam", "Lunch at noon?"))),
    "alpaca": Items(texts=("Name the capital of Peru.", "Sort the numbers in ascending order."),
                    pairs=(("", "Lima."), ("9, 2, 5", "2, 5, 9")), first_number=4),
}
# What an accepted row may never hold: words about the answer, and our prompts' item markers.
MARKERS = re.compile(r"Task \d+:|### Task|\*\*(?:Example|Input|Output|Label|Instruction)\b|^(?:Input|Output|Label):",
                     re.MULTILINE)


def _read(kind: str, text: str) -> object:
    if kind == "instructions":
        return list(parse_instructions(text, "stop").items)
    if kind == "classify":
        return parse_classification(text)
    if kind == "alpaca":
        return [(instruction, (item.input, item.output)) for instruction, item in parse_alpaca_tasks(text, "stop").items]
    return [(item.input, item.output) for item in parse_instances(text, kind == "labels", "stop").items]


def _expected(kind: str, items: Items, text: str) -> object:
    if kind == "instructions":
        return list(items.texts)
    if kind == "alpaca":
        return list(zip(items.texts, items.pairs))
    if kind == "labels":
        return [(given, label) for label, given in items.pairs]
    return list(items.pairs)


@pytest.mark.parametrize("style", WRITTEN)
@pytest.mark.parametrize("kind", sorted(ITEMS))
@pytest.mark.parametrize("sample", range(6))
def test_every_style_reads_back_as_its_items(style: str, kind: str, sample: int) -> None:
    rng = random.Random(f"{style}:{kind}:{sample}")
    text = render(kind, ITEMS[kind], rng, style)
    if style == "code" and kind in {"instances", "alpaca"}:
        # Code answers replace the outputs: each must come back whole, fenced or indented.
        outputs = [pair[1][1] if kind == "alpaca" else pair[1] for pair in _read(kind, text)]  # type: ignore[index]
        assert len(outputs) == len(ITEMS[kind].pairs)
        assert all(_holds_whole_code(output) for output in outputs), outputs
        return
    assert _read(kind, text) == _expected(kind, ITEMS[kind], text), text


@pytest.mark.parametrize("style", WRITTEN)
@pytest.mark.parametrize("answer", [True, False])
def test_every_style_reads_back_its_classification(style: str, answer: bool) -> None:
    for sample in range(6):
        text = render("classify", Items(answer=answer), random.Random(f"{style}:{sample}"), style)
        assert parse_classification(text) is answer, text


def _holds_whole_code(output: str) -> bool:
    fenced = any(f"```python\n{code}\n```" in output for code in CODE_ANSWERS)
    indented = any("\n".join(f"    {line}" for line in code.split("\n")) in output for code in CODE_ANSWERS)
    return fenced or indented


@pytest.fixture(scope="module")
def mixed_teacher() -> Iterator[FakeTeacher]:
    with FakeTeacher(FakeTeacherConfig(seed=11, style="mixed")) as server:
        yield server


def _rows(out: Path) -> list[dict[str, str]]:
    return json.loads((out / "alpaca_data.json").read_text())


def _junk_in(row: dict[str, str]) -> list[str]:
    found = []
    for text in (row["instruction"], row["input"], row["output"]):
        found += [phrase for phrase in (*SIGNOFFS, *(p.split("{")[0] for p in PREAMBLES)) if phrase in text]
        found += MARKERS.findall(text)
    return found


@pytest.mark.parametrize(("method", "api"), [("self-instruct", "chat"), ("self-instruct", "completions"),
                                             ("alpaca", "chat")])
def test_a_grow_on_chat_shaped_replies_accepts_no_chatter_and_keeps_code_whole(
        mixed_teacher: FakeTeacher, tmp_path: Path, method: str, api: str) -> None:
    config = build_config({"backend": "openai", "base_url": [mixed_teacher.base_url], "out": tmp_path,
                           "target": 25, "method": method, "api": api, "structured": "off"})
    result = grow(config)
    rows = _rows(tmp_path)
    assert result.accepted == 25 and rows
    assert [(row["instruction"], _junk_in(row)) for row in rows if _junk_in(row)] == []
    code_rows = [row for row in rows if "output =" in row["output"]]
    assert code_rows, "the mixed style writes code answers; some must be accepted"
    assert all(_holds_whole_code(row["output"]) for row in code_rows), [row["output"] for row in code_rows]


def test_the_default_style_is_the_prompt_layout() -> None:
    text = render("instances", ITEMS["instances"], random.Random(0), "plain")
    assert text == "Example 1\nInput: 3, 8, 10\nOutput: 21\nExample 2\nInput: <none>\nOutput: A short answer that needs no input."
    assert FakeTeacherConfig().style == "plain"
    assert parse_instances(text, False, "stop").items == [Instance(input="3, 8, 10", output="21"),
                                                          Instance(input="", output="A short answer that needs no input.")]
