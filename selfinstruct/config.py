"""The grow configuration: one pydantic model shared by the CLI, config files and the Prefect flow."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .prices import ModelPrice
from .records import Method
from .seeds import DEFAULT_SEEDS

Backend = Literal["cpu", "openai", "vllm"]
Api = Literal["chat", "completions"]
Structured = Literal["auto", "on", "off"]


class Decoding(BaseModel):
    """Sampling parameters for one kind of request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.5, gt=0, le=1)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    max_tokens: int = Field(1024, ge=1)
    stop: tuple[str, ...] = ()


# The originals: Self-Instruct samples instructions at T=0.7, top_p=0.5 with a
# presence penalty of 2 and instances greedily; Alpaca samples whole tasks at T=1.
SELF_INSTRUCT_INSTRUCTIONS = Decoding(
    temperature=0.7, top_p=0.5, presence_penalty=2.0, max_tokens=1024, stop=("\n\n",)
)
# Stops keep a continuing model from inventing the next question or task.
SELF_INSTRUCT_CLASSIFY = Decoding(temperature=0.0, top_p=1.0, max_tokens=4, stop=("\n",))
SELF_INSTRUCT_INSTANCES = Decoding(temperature=0.0, top_p=1.0, max_tokens=512, stop=("\nTask:",))
ALPACA_TASKS = Decoding(temperature=1.0, top_p=1.0, max_tokens=3072)


class InstanceFilterConfig(BaseModel):
    """Self-Instruct's checks of a task's instances (`[filters.instances]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_is_output: bool = Field(
        True, description="drop an instance whose output repeats its input (case and spacing ignored), unless "
                          "the instruction asks to copy or repeat")
    ends_with_colon: bool = Field(
        True, description="drop an instance whose input or output ends with ':', a sign it was cut off")
    conflicting_outputs: bool = Field(
        True, description="drop the whole task when one non-empty input has two different outputs")


class AnswerCheckConfig(BaseModel):
    """Checks of what an instance's output says (`[filters.answers]`); each can be turned off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    refusal: bool = Field(True, description="drop refusals and AI disclaimers (\"I'm sorry, but I can't\", "
                                            "\"As an AI language model\")")
    extra_refusal_phrases: tuple[str, ...] = Field(
        (), description="more phrases that mark a refusal anywhere in an output (case-insensitive, whole words)")
    placeholder: bool = Field(True, description="drop outputs with template placeholders ([Your Name], "
                                                "<insert text>, {company}, XXX) unless the task asks for a template")
    no_input_marker: bool = Field(True, description="drop outputs that carry a no-input marker (<none>, "
                                                    "<noinput>, or N/A as the whole output)")
    missing_input: bool = Field(True, description="drop an instance with an empty input whose instruction points "
                                                  "at one (\"the following text\", \"this paragraph\")")
    cut_off: bool = Field(True, description="drop the last instance of a reply that stopped at its length limit")
    repetition: bool = Field(True, description="drop outputs that repeat themselves (word n-grams or lines)")
    repetition_ngram: int = Field(3, ge=1, le=10, description="word n-gram size for the repetition share")
    repetition_max_share: float = Field(
        0.5, gt=0, le=1, description="drop when more than this share of an output's word n-grams are repeats")
    repetition_min_words: int = Field(
        20, ge=2, description="outputs shorter than this many words are not judged for n-gram repetition")
    line_repeat_max: int = Field(
        4, ge=1, description="a line of three or more words may appear at most this many times in an output")
    restates_instruction: bool = Field(
        True, description="drop an output that is (nearly) its own instruction")
    restate_similarity: float = Field(
        0.9, gt=0, le=1, description="word-overlap F1 between output and instruction at which it counts as a restatement")
    prompt_leak: bool = Field(
        True, description="drop outputs that copy our prompt's wording (headers, 'Task 12:' items, 'Input:' lines)")
    script: bool = Field(
        True, description="drop an output written in another script (Latin, Cyrillic, CJK...) than its instruction "
                          "and input, unless the instruction asks for another language")
    script_min_share: float = Field(
        0.5, gt=0, le=1, description="share of an output's letters that must be in a script of its instruction or input")
    script_min_letters: int = Field(
        4, ge=1, description="outputs with fewer letters than this are not judged for their script")


class FilterConfig(BaseModel):
    """Heuristic and near-duplicate filter settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(4, ge=1, description="instructions need more than 3 words")
    max_words: int = Field(150, ge=1)
    blacklist: tuple[str, ...] = (
        "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
        "map", "maps", "draw", "plot", "go to", "video", "audio", "music",
        "flowchart", "diagram",
    )
    allow_non_ascii_start: bool = False
    rouge_threshold: float = Field(0.7, gt=0, le=1)
    minhash: bool = True
    minhash_threshold: float = Field(0.7, gt=0, le=1)
    instances: InstanceFilterConfig = Field(
        InstanceFilterConfig(), description="Self-Instruct's instance filters")
    answers: AnswerCheckConfig = Field(AnswerCheckConfig(), description="checks of what an output says")


class VllmOptions(BaseModel):
    """`vllm serve` options used when the vllm backend starts its own server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=256)
    dtype: str = "auto"
    prefix_caching: bool = True
    extra_args: tuple[str, ...] = ()


class GrowConfig(BaseModel):
    """Everything `selfinstruct grow` needs. Field names match the CLI flags."""

    model_config = ConfigDict(extra="forbid")

    target: int = Field(25, ge=1, description="accepted machine-generated examples to reach")
    out: Path = Path("outputs/default")
    backend: Backend = "cpu"
    model: str | None = None
    base_url: list[str] = Field(default_factory=list)
    api: Api | None = Field(
        None, description="default: completions for cpu (a small model continues text best) and vllm (prompts "
                          "batched per request), chat for openai")
    method: Method = "self-instruct"
    structured: Structured = Field(
        "auto", description="ask chat teachers for JSON replies that match each stage's schema (response_format "
                            "json_schema, strict) and validate them; auto: on for the chat API, off for completions "
                            "(base models continue text, read by the text parser)")
    seeds: Path = DEFAULT_SEEDS
    seed: int = Field(0, description="random seed for demo sampling")
    prompts_per_round: int | None = Field(
        None, ge=1, description="instruction-generation requests per round; default 4 for cpu, 8 otherwise (with "
                                "pipeline_rounds, enough generation requests to fill the teacher)")
    demos: int = Field(8, ge=2, description="instructions shown per self-instruct prompt")
    machine_demos: int = Field(2, ge=0, description="of which at most this many are machine-generated")
    alpaca_demos: int = Field(3, ge=1)
    alpaca_tasks: int = Field(20, ge=1, description="tasks asked for per alpaca prompt")
    instances_per_task: int = Field(2, ge=1, le=5)
    concurrency: int | None = Field(
        None, ge=1, description="teacher requests in flight at most; default 4 for cpu (llama.cpp serves one "
                                "at a time), 128 otherwise (a vLLM server batches that many)")
    batch_prompts: int | None = Field(
        None, ge=1, le=256, description="prompts per completions request (the API takes a list); default 32 on "
                                        "the completions API, 1 for cpu (llama.cpp serves one at a time) and chat")
    pipeline_rounds: int | None = Field(
        None, ge=1, le=64, description="rounds in flight at once; round N shows machine demos accepted by round "
                                       "N - pipeline_rounds. Default 1 for cpu, 16 otherwise")
    request_timeout: float = Field(120.0, gt=0)
    max_attempts: int = Field(5, ge=1, description="tries per request before it is dead-lettered")
    requests_per_minute: int | None = Field(None, ge=1, description="else learned from x-ratelimit-* headers")
    tokens_per_minute: int | None = Field(None, ge=1, description="else learned from x-ratelimit-* headers")
    failure_window: int = Field(200, ge=1, description="recent requests judged for the failure threshold")
    failure_threshold: float = Field(0.5, gt=0, le=1, description="stop when more of them failed for good")
    max_rounds: int | None = Field(None, ge=1, description="stop after this many rounds in this run")
    max_requests: int | None = Field(None, ge=1, description="budget over the run directory: requests sent")
    max_tokens: int | None = Field(None, ge=1, description="budget over the run directory: prompt + completion tokens")
    max_cost: float | None = Field(None, gt=0, description="budget over the run directory: estimated USD")
    prices: dict[str, ModelPrice | None] = Field(
        default_factory=dict, description="USD per million tokens by model; adds to / overrides prices.DEFAULT_PRICES")
    instruction_decoding: Decoding = SELF_INSTRUCT_INSTRUCTIONS
    classify_decoding: Decoding = SELF_INSTRUCT_CLASSIFY
    instance_decoding: Decoding = SELF_INSTRUCT_INSTANCES
    alpaca_decoding: Decoding = ALPACA_TASKS
    filters: FilterConfig = FilterConfig()
    vllm: VllmOptions = VllmOptions()
    server_startup_timeout: float = Field(300.0, gt=0)

    @property
    def uses_structured(self) -> bool:
        return self.structured == "on" or (self.structured == "auto" and self.api == "chat")

    @model_validator(mode="after")
    def _check_backend(self) -> "GrowConfig":
        if self.machine_demos >= self.demos:
            raise ValueError("machine_demos must be smaller than demos")
        if self.backend == "vllm" and not self.model and not self.base_url:
            raise ValueError("the vllm backend needs --model (to start a server) or --base-url")
        cpu = self.backend == "cpu"
        if self.api is None:
            self.api = "chat" if self.backend == "openai" else "completions"
        if self.structured == "on" and self.api != "chat":
            raise ValueError("structured = on needs api = chat: the completions path reads text replies")
        if self.batch_prompts is None:
            self.batch_prompts = 32 if self.api == "completions" and not cpu else 1
        elif self.batch_prompts > 1 and self.api != "completions":
            raise ValueError("batch_prompts above 1 needs api = completions: a chat request holds one conversation")
        elif self.batch_prompts > 1 and cpu and not self.base_url:
            raise ValueError("batch_prompts above 1 needs a server that takes a list of prompts; the bundled "
                             "llama_cpp.server answers one prompt per request")
        if self.concurrency is None:
            self.concurrency = 4 if cpu else 128
        if self.prompts_per_round is None:
            self.prompts_per_round = 4 if cpu else 8
        if self.pipeline_rounds is None:
            self.pipeline_rounds = 1 if cpu else 16
        return self


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict of GrowConfig fields."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "an existing config file", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), None, "a config file", "a directory") from None
    except OSError as err:
        raise ConfigError(str(path), None, "a readable config file", err.strerror) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "UTF-8 text", "undecodable bytes") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}", None, "valid JSON", err.msg) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), None, "valid TOML", str(err)) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), None, "a table of settings", type(data).__name__)
    return data


def build_config(
    values: dict[str, Any], source: str = "options", locate: Callable[[tuple[str, ...]], str] | None = None
) -> GrowConfig:
    """Validate `values` into a GrowConfig (None means unset), turning pydantic errors into one ConfigError.

    `locate` names where a field's value came from (e.g. "grow.toml:3"), else `source` does.
    """
    return build_model(GrowConfig, values, source, locate)


M = TypeVar("M", bound=BaseModel)


def build_model(model: type[M], values: dict[str, Any], source: str = "options",
                locate: Callable[[tuple[str, ...]], str] | None = None) -> M:
    """Validate `values` into any settings model (None means unset); the first pydantic error as a ConfigError."""
    try:
        return model.model_validate({key: value for key, value in values.items() if value is not None})
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(str(part) for part in first["loc"])
        got = None if first["type"] == "missing" else json.dumps(first.get("input"), default=str)[:60]
        where = locate(loc) if locate and loc else source
        raise ConfigError(where, ".".join(loc) or None, first["msg"].lower().removeprefix("value error, "), got) from None


def key_line(path: Path, loc: tuple[str, ...]) -> int | None:
    """The line of a config file where the setting at `loc` (e.g. ("filters", "min_words")) is written.

    TOML: `key = ...` under the table `[a.b]` of loc's parents (or `a.b.key = ...`); JSON: the first
    `"key":` after the parents' keys. None when it cannot be found (the error then names the file only).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    parents, key = list(loc[:-1]), loc[-1]
    if path.suffix == ".json":
        wanted = [*parents, key]
        for number, line in enumerate(lines, 1):
            while wanted and re.search(rf'"{re.escape(wanted[0])}"\s*:', line):
                wanted.pop(0)
                if not wanted:
                    return number
        return None
    table: list[str] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if header := re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", stripped):
            table = [part.strip().strip('"') for part in header.group(1).split(".")]
            continue
        if assigned := re.match(r'\s*("?)([\w.-]+)\1\s*=', line):
            if [*table, *(part.strip() for part in assigned.group(2).split("."))] == [*parents, key]:
                return number
    return None
