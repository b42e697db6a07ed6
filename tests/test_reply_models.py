"""Structured (JSON) replies: the schemas strict mode takes, and the readers."""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any

import httpx
import pytest

from selfinstruct.core.records import Instance
from selfinstruct.teacher.openai_compat import LLAMA_CPP_PYTHON, wire_response_format
from selfinstruct.generate.reply_models import (
    StructuredReplyInvalid, json_schema, read_structured_alpaca, read_structured_classification,
    read_structured_instances, read_structured_instructions, response_format,
)

CASES = [("instructions", False), ("classify", False), ("instances", False), ("instances", True), ("alpaca", False)]


def _objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "object" else []
        return found + [obj for value in node.values() for obj in _objects(value)]
    if isinstance(node, list):
        return [obj for item in node for obj in _objects(item)]
    return []


@pytest.mark.parametrize(("stage", "is_classification"), CASES)
def test_schemas_fit_strict_mode(stage: str, is_classification: bool) -> None:
    schema = json_schema(stage, is_classification)  # type: ignore[arg-type]
    assert "$defs" not in str(schema) and "$ref" not in str(schema)
    for obj in _objects(schema):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    body = response_format(stage, is_classification)  # type: ignore[arg-type]
    assert body["type"] == "json_schema" and body["json_schema"]["strict"] is True
    assert body["json_schema"]["schema"] == schema


def test_labelled_instances_put_the_label_first() -> None:
    item = json_schema("instances", True)["properties"]["instances"]["items"]
    assert list(item["properties"]) == ["label", "input"]


def test_readers_accept_fences_and_chatter_and_give_parser_items() -> None:
    text = 'Sure!\n```json\n{"instructions": ["  Write a  poem.", "**Task 3:** Sort it.", ""]}\n```\nEnjoy!'
    assert read_structured_instructions(text, "stop").items == ["Write a poem.", "Sort it."]
    assert read_structured_classification('{"classification": "No"}', "stop").items == [False]
    labelled = '{"instances": [{"label": "Spam", "input": "Win!"}, {"label": "Ham", "input": "<none>"}]}'
    assert read_structured_instances(labelled, True, "stop").items == [
        Instance(input="Win!", output="Spam"), Instance(input="", output="Ham")]
    tasks = '{"tasks": [{"instruction": "Add.", "input": "2, 3", "output": "5"}, {"instruction": "x", ' \
            '"input": "", "output": ""}]}'
    assert read_structured_alpaca(tasks, "stop").items == [("Add.", Instance(input="2, 3", output="5"))]


@pytest.mark.parametrize(("reader", "text", "detail"), [
    (lambda t: read_structured_instructions(t, "stop"), "no json here", "no JSON object"),
    (lambda t: read_structured_instructions(t, "stop"), '{"tasks": ["a"]}', "instructions"),
    (lambda t: read_structured_classification(t, "stop"), '{"classification": "Maybe"}', "classification"),
    (lambda t: read_structured_instances(t, False, "stop"), '{"instances": [{"input": 3, "output": "x"}]}',
     "instances.0.input"),
    (lambda t: read_structured_alpaca(t, "stop"), '{"tasks": [{"instruction": "a", "output": "b"}]}', "input"),
])
def test_an_invalid_reply_raises_with_a_short_detail(reader: Any, text: str, detail: str) -> None:
    with pytest.raises(StructuredReplyInvalid) as raised:
        reader(text)
    assert detail in raised.value.detail and isinstance(raised.value, ValueError)


def test_a_reply_cut_by_its_length_limit_keeps_the_whole_elements() -> None:
    parsed = read_structured_instructions('{"instructions": ["Name a bird.", "Describe the tas', "length")
    assert parsed.items == ["Name a bird."] and parsed.truncated == '"Describe the tas'
    parsed_tasks = read_structured_alpaca('{"tasks": [{"instruction": "Add.", "input": "", "output": "5"}, {"ins',
                                          "length")
    assert parsed_tasks.items == [("Add.", Instance(output="5"))]


@pytest.mark.slow
def test_the_bundled_model_under_llama_cpp_answers_every_schema_readably(tmp_path: Path) -> None:
    from selfinstruct.core.config import build_config
    from selfinstruct.generate.prompts import (
        render_alpaca_prompt, render_classify_prompt, render_instance_prompt, render_instruction_prompt,
        structured_prompt,
    )
    from selfinstruct.core.seeds import DEFAULT_SEEDS, load_seeds
    from selfinstruct.teacher.registry import open_teacher

    seeds = load_seeds(DEFAULT_SEEDS)
    asks = [
        ("instructions", False, structured_prompt(render_instruction_prompt([s.instruction for s in seeds[:8]]),
                                                  "instructions", 8),
         lambda text, finish: read_structured_instructions(text, finish)),
        ("classify", False, structured_prompt(render_classify_prompt(seeds[1].instruction), "classify"),
         lambda text, finish: read_structured_classification(text, finish)),
        ("instances", False, structured_prompt(render_instance_prompt(seeds[0].instruction, False), "instances", 2),
         lambda text, finish: read_structured_instances(text, False, finish)),
        ("instances", True, structured_prompt(render_instance_prompt(seeds[1].instruction, True), "labels", 2),
         lambda text, finish: read_structured_instances(text, True, finish)),
        ("alpaca", False, structured_prompt(render_alpaca_prompt(seeds[:3], 3), "alpaca", 3),
         lambda text, finish: read_structured_alpaca(text, finish)),
    ]
    with open_teacher(build_config({"out": tmp_path}), tmp_path) as endpoints, \
            httpx.Client(base_url=endpoints.base_urls[0], timeout=600) as client:
        for stage, is_classification, prompt, read in asks:
            body = {"model": endpoints.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 400,
                    "temperature": 0.0, "response_format": wire_response_format(
                        json.dumps(response_format(stage, is_classification)), LLAMA_CPP_PYTHON)}
            choice = client.post("/chat/completions", json=body).raise_for_status().json()["choices"][0]
            if choice["finish_reason"] != "length":  # constrained decoding: a whole reply always validates
                read(choice["message"]["content"], choice["finish_reason"])


def test_a_capped_schema_limits_its_list() -> None:
    from selfinstruct.generate.reply_models import response_format

    capped = response_format("instructions", max_items=8)["json_schema"]["schema"]
    assert capped["properties"]["instructions"]["maxItems"] == 8
    assert "maxItems" not in json.dumps(response_format("instructions"))
    assert capped["properties"]["instructions"]["minItems"] == 1  # an empty list is no answer
    assert "maxItems" not in json.dumps(response_format("classify", max_items=3))
