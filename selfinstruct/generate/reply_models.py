"""Structured (JSON) replies: the pydantic model of each stage, its JSON schema, and the readers.

A chat teacher asked for `response_format: {"type": "json_schema", ...}` answers one JSON object per request.
The readers validate it and give the same items as the text parser (`parse`), so everything downstream is the
same whichever way a reply was asked for. A reply that does not validate raises `StructuredReplyInvalid`;
the caller retries it once, then counts it under its own drop reason.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .parse import Parsed, clean_instruction, input_value, label_value
from .parse_json import find_json, find_json_list
from ..core.records import Instance
from ..core.sanitize import sanitize_text

Stage = Literal["instructions", "classify", "instances", "alpaca"]

# A model filling a list in JSON often numbers the items inside the strings too ("1. Write ...").
_ITEM_NUMBER = re.compile(r"^\s*(?:task\s*)?\d{1,3}\s*[.):]\s+", re.IGNORECASE)
# JSON syntax inside a string value: a small model that lost its place writes the next object's braces into
# the current field ("21 }, {"). A short field ending in an opening brace or starting with a closing one.
_JSON_DEBRIS = re.compile(r"^\s*[}\]]|[{\[]\s*$")


def _debris(text: str) -> bool:
    return bool(_JSON_DEBRIS.search(text))


class StructuredReplyInvalid(ValueError):
    """A structured reply that is not JSON of the stage's schema; `detail` says what was wrong, briefly."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"{stage} reply does not match its schema: {detail}")
        self.stage = stage
        self.detail = detail


class _Reply(BaseModel):
    # Unknown keys are ignored when reading (a non-strict server may add one); the schema still forbids them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class InstructionsReply(_Reply):
    instructions: list[str]


class ClassificationReply(_Reply):
    classification: Literal["Yes", "No"]


class InstanceItem(_Reply):
    input: str
    output: str


class LabelledItem(_Reply):
    # Label first: a model writes the properties in schema order, so it picks the label, then an input for it.
    label: str
    input: str


class InstancesReply(_Reply):
    instances: list[InstanceItem]


class LabelledInstancesReply(_Reply):
    instances: list[LabelledItem]


class AlpacaItem(_Reply):
    instruction: str
    input: str
    output: str


class AlpacaReply(_Reply):
    tasks: list[AlpacaItem]


def reply_model(stage: Stage, is_classification: bool = False) -> type[_Reply]:
    """The pydantic model of a stage's reply (output-first instances for a classification task)."""
    if stage == "instances":
        return LabelledInstancesReply if is_classification else InstancesReply
    return {"instructions": InstructionsReply, "classify": ClassificationReply, "alpaca": AlpacaReply}[stage]


def json_schema(stage: Stage, is_classification: bool = False) -> dict[str, Any]:
    """The stage's JSON schema in the subset strict mode takes: no $refs, every property required, no extras."""
    strict = strict_schema(reply_model(stage, is_classification))
    if stage != "classify":
        # At least one item: allowed an empty list, the bundled model answered `{"instructions": []}` to nearly
        # every prompt (measured: 1 task in 26 rounds).
        (key,) = strict["properties"]
        strict["properties"][key]["minItems"] = 1
    return strict


def response_format(stage: Stage, is_classification: bool = False, max_items: int | None = None) -> dict[str, Any]:
    """The `response_format` body field asking for the stage's schema, strictly.

    `max_items` caps the reply's list: a constrained decoder (llama.cpp's grammar, vLLM's) then closes the JSON
    after the last item we can keep, instead of writing items until max_tokens (measured: a 135M model filled
    1,023 tokens with instructions when asked for 8).
    """
    name = f"{stage}_labelled" if stage == "instances" and is_classification else stage
    schema = json_schema(stage, is_classification)
    if max_items is not None and stage != "classify":
        (key,) = schema["properties"]
        schema["properties"][key]["maxItems"] = max_items
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic model's JSON schema in the subset strict mode takes: $refs inlined, every property required,
    no extra properties, no titles."""
    schema = model.model_json_schema()
    return _strict(_inline_refs(schema, schema.pop("$defs", {})))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline_refs(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]), defs)
        return {key: _inline_refs(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    return node


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _strict(value) for key, value in node.items() if key != "title"}
        if node.get("type") == "object":
            node["additionalProperties"] = False
            node["required"] = list(node.get("properties", {}))
        return node
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


# -- readers --------------------------------------------------------------------------------------------------------

def read_structured_instructions(text: str, finish_reason: str | None) -> Parsed[str]:
    reply, truncated = _validate(text, finish_reason, "instructions", InstructionsReply, "instructions", str)
    items = [clean_instruction(_ITEM_NUMBER.sub("", sanitize_text(item))) for item in reply]
    return Parsed(items=[item for item in items if item and not _debris(item)], truncated=truncated)


def read_structured_classification(text: str, finish_reason: str | None) -> Parsed[bool]:
    """One item: True for Yes, False for No."""
    value = _load(text, "classify")
    try:
        reply = ClassificationReply.model_validate(value)
    except ValidationError as err:
        raise StructuredReplyInvalid("classify", _detail(err)) from None
    return Parsed(items=[reply.classification == "Yes"])


def read_structured_instances(text: str, is_classification: bool, finish_reason: str | None) -> Parsed[Instance]:
    if is_classification:
        labelled, truncated = _validate(text, finish_reason, "instances", LabelledInstancesReply, "instances",
                                        LabelledItem)
        pairs = [(item.input, label_value(sanitize_text(item.label))) for item in labelled]
    else:
        plain, truncated = _validate(text, finish_reason, "instances", InstancesReply, "instances", InstanceItem)
        pairs = [(item.input, sanitize_text(item.output).strip()) for item in plain]
    items = [Instance(input=input_value(sanitize_text(given)), output=output) for given, output in pairs
             if output and not _debris(given) and not (is_classification and _debris(output))]
    return Parsed(items=items, truncated=truncated)


def read_structured_alpaca(text: str, finish_reason: str | None) -> Parsed[tuple[str, Instance]]:
    reply, truncated = _validate(text, finish_reason, "alpaca", AlpacaReply, "tasks", AlpacaItem)
    tasks = []
    for item in reply:
        instruction = clean_instruction(sanitize_text(item.instruction))
        output = sanitize_text(item.output).strip()
        if instruction and output:
            tasks.append((instruction, Instance(input=input_value(sanitize_text(item.input)), output=output)))
    return Parsed(items=tasks, truncated=truncated)


def _validate(text: str, finish_reason: str | None, stage: str, model: type[_Reply], key: str,
              item_type: type) -> tuple[list[Any], str | None]:
    """The validated list under `key`, and the cut-off rest when a reply cut by its length limit is kept."""
    if finish_reason == "length":
        # Cut inside the list: keep the elements that arrived whole; only the cut one is lost.
        found = find_json_list(text)
        if found is not None and not found.closed:
            return _valid_items(found.items, stage, item_type), found.rest or None
    value = _load(text, stage)
    try:
        return list(getattr(model.model_validate(value), key)), None
    except ValidationError as err:
        raise StructuredReplyInvalid(stage, _detail(err)) from None


def _valid_items(items: list[Any], stage: str, item_type: type) -> list[Any]:
    try:
        if item_type is str:
            return [item for item in InstructionsReply.model_validate({"instructions": items}).instructions]
        return [item_type.model_validate(item) for item in items]
    except ValidationError as err:
        raise StructuredReplyInvalid(stage, _detail(err)) from None


def _load(text: str, stage: str) -> Any:
    value = find_json(text)
    if value is None:
        raise StructuredReplyInvalid(stage, "no JSON object in the reply")
    return value


def _detail(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']} ({err.error_count()} error{'s' if err.error_count() > 1 else ''})"
