"""The one request path: the async OpenAI SDK against any OpenAI-compatible endpoint.

Requests go through the SDK's generic `client.post(path, cast_to=<httpx response>, body=...)`, its
documented route for any endpoint: the SDK still builds the URL, auth, timeout and error classes, but
we skip its request-parameter transform and response models (0.3 to 1.2 ms of CPU per request,
measured; see docs/benchmarks.md) and get the response headers for the rate limiter. On the
completions API, prompts ready at the same moment share one request (`batch_prompts`, batching.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)

from ..config import Api
from ..errors import TeacherError
from ..sanitize import replace_lone_surrogates
from .base import TeacherReply, TeacherRequest
from .batching import PromptBatcher
from .endpoints import Endpoint, EndpointPool
from .limits import FailureWindow, RateLimiter, TeacherFailing
from .retry import (
    EMPTY_CHOICES,
    MALFORMED,
    BadReply,
    error_class,
    should_retry,
    wait_seconds,
)
from .usage import Usage

try:  # openai >= 2 sends through httpx2; older releases through httpx
    from httpx2 import Limits, Response, create_ssl_context
except ImportError:  # pragma: no cover - depends on the installed SDK
    from httpx import Limits, Response, create_ssl_context  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Connections per SDK client. httpcore scans every pooled connection on each request (measured: 4.5 ms
# of CPU per request with one pool of 128, 2.6 ms with pools of 8), so an endpoint gets several clients.
CONNECTIONS_PER_CLIENT = 8
# The SDK's aiohttp transport (`pip install 'openai[aiohttp]'`) costs about half the CPU per request of
# its default httpx one (measured: 1.2 vs 2.0 ms); we use it when it is installed.
_AIOHTTP = getattr(openai, "DefaultAioHttpClient", None)
CHARS_PER_TOKEN = 4  # rough prompt-token estimate for the tokens-per-minute limit
OPENAI_SCHEMA = "openai"
LLAMA_CPP_PYTHON = "llama-cpp-python"
_Read = TypeVar("_Read")


class TeacherRequestFailed(TeacherError):
    """One request ran out of attempts; `error_class` names its last error."""

    def __init__(self, message: str, error_class: str):
        super().__init__(message)
        self.error_class = error_class


@dataclass
class OpenAITeacher:
    """Sends requests to the least busy endpoint, at most `concurrency` at once, with bounded retries."""

    base_urls: list[str]
    model: str
    api: Api = "chat"
    api_key: str = field(default="not-needed", repr=False)
    timeout: float = 120.0
    max_attempts: int = 5
    concurrency: int = 8
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    failure_window: int = 200
    failure_threshold: float = 0.5
    batch_prompts: int = 1  # completions API: prompts per request (see batching.py)
    schema_dialect: str = OPENAI_SCHEMA  # how the server takes a JSON schema (see _response_format)
    retries: int = 0

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise TeacherError("no teacher endpoint to send requests to")
        shards = math.ceil(self.concurrency / CONNECTIONS_PER_CLIENT)
        per_client = min(self.concurrency, CONNECTIONS_PER_CLIENT)
        # One TLS context for all clients: building one loads the CA bundle (0.1 s each, measured).
        self._tls = create_ssl_context()
        self.pool: EndpointPool[openai.AsyncOpenAI] = EndpointPool([
            Endpoint(url, [self._client(url, per_client) for _ in range(shards)]) for url in self.base_urls
        ])
        self.limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute)
        self.health = FailureWindow(self.failure_window, self.failure_threshold)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._path = "/chat/completions" if self.api == "chat" else "/completions"
        self._batcher: PromptBatcher | None = None
        if self.batch_prompts > 1:
            if self.api != "completions":
                raise TeacherError("batching prompts needs the completions API: a chat request holds one conversation")
            self._batcher = PromptBatcher(self._send_batch, self.batch_prompts)

    def _client(self, url: str, connections: int) -> openai.AsyncOpenAI:
        # max_retries=0: tenacity is the only layer that retries, so attempts stay bounded.
        limits = Limits(max_connections=connections, max_keepalive_connections=connections)
        options = {"limits": limits, "timeout": self.timeout, "verify": self._tls}
        try:
            http = _AIOHTTP(**options) if _AIOHTTP is not None else openai.DefaultAsyncHttpxClient(**options)
        except RuntimeError:  # the SDK says its aiohttp extra is missing
            http = openai.DefaultAsyncHttpxClient(**options)
        return openai.AsyncOpenAI(base_url=url, api_key=self.api_key, timeout=self.timeout, max_retries=0,
                                  http_client=http)

    def raise_if_failing(self) -> None:
        if self.health.tripped():
            raise TeacherFailing(f"stopping: {self.health.describe()}; check the teacher at "
                                 f"{', '.join(self.base_urls)} (dead letters are in the store)")

    async def complete(self, request: TeacherRequest, usage: Usage | None = None) -> TeacherReply:
        """The reply to `request`; raises TeacherRequestFailed once its attempts are used up."""
        self.raise_if_failing()
        try:
            try:
                # Most requests succeed at once: the retry machinery starts with the first failure.
                reply = await self._attempt(request, usage)
            except (openai.OpenAIError, BadReply) as first:
                if not should_retry(first) or self.max_attempts < 2:
                    raise
                reply = await self._retried(request, usage, first)
        except (openai.OpenAIError, BadReply) as err:
            kind = error_class(err)
            self.health.record(kind)
            raise TeacherRequestFailed(_describe(err, self.max_attempts), kind) from None
        self.health.record(None)
        return reply

    async def _retried(self, request: TeacherRequest, usage: Usage | None, first: BaseException) -> TeacherReply:
        """Attempts 2 to max_attempts, with tenacity: backoff with jitter, Retry-After honoured."""
        self._count_retry(1, first)
        await asyncio.sleep(wait_seconds(1, first))
        retrying = AsyncRetrying(
            retry=retry_if_exception(should_retry), stop=stop_after_attempt(self.max_attempts - 1), reraise=True,
            # tenacity numbers these attempts from 1; they are attempts 2, 3, ... of the request
            wait=lambda state: wait_seconds(state.attempt_number + 1, _error_of(state)),
            before_sleep=lambda state: self._count_retry(state.attempt_number + 1, _error_of(state)),
        )
        async for attempt in retrying:
            with attempt:
                reply = await self._attempt(request, usage)
        return reply

    async def _attempt(self, request: TeacherRequest, usage: Usage | None) -> TeacherReply:
        # The slot is held for the attempt only, not for the backoff sleep between attempts; a batched
        # prompt holds one too, so `concurrency` counts prompts in flight, as a server's batch does.
        async with self._slots:
            try:
                if self._batcher is not None:
                    return await self._batcher.submit(request)
                tokens = len(request.prompt) // CHARS_PER_TOKEN + request.decoding.max_tokens
                return await self._post(self._body(request), tokens, self._read_one)
            except (openai.OpenAIError, BadReply) as err:
                if usage is not None:
                    usage.attempt_failed(error_class(err))
                raise

    async def _send_batch(self, requests: list[TeacherRequest]) -> list[TeacherReply | Exception]:
        """One completions request for prompts that share their decoding parameters."""
        body = self._body(requests[0])
        body["prompt"] = [request.prompt for request in requests]
        prompt_chars = [len(request.prompt) for request in requests]
        tokens = sum(prompt_chars) // CHARS_PER_TOKEN + len(requests) * requests[0].decoding.max_tokens
        return await self._post(body, tokens, lambda content, seconds: _read_batch(content, prompt_chars, seconds))

    def _read_one(self, content: bytes, seconds: float) -> TeacherReply:
        return _read_reply(content, self.api, seconds)

    async def _post(self, body: dict[str, Any], tokens: int, read: Callable[[bytes, float], _Read]) -> _Read:
        """POST to the least busy endpoint within the rate limits; `read` turns the body into replies.

        A body `read` rejects (BadReply) counts against the endpoint, like an HTTP error.
        """
        await self.limiter.acquire(tokens)
        endpoint = await self.pool.acquire()
        shard = endpoint.take_client()
        started = time.perf_counter()
        outcome: str | None = "cancelled"  # neither a success nor an endpoint fault
        try:
            response = await endpoint.clients[shard].post(self._path, cast_to=Response, body=body)
            result = read(response.content, time.perf_counter() - started)
            outcome = None
        except (openai.OpenAIError, BadReply) as err:
            outcome = error_class(err)
            raise
        finally:
            endpoint.give_client(shard)
            self.pool.release(endpoint, outcome)
        self.limiter.observe(response.headers)
        return result

    def _body(self, request: TeacherRequest) -> dict[str, Any]:
        return request_body(request, self.api, self.model, self.schema_dialect)

    def _count_retry(self, failed_attempt: int, error: BaseException | None) -> None:
        self.retries += 1
        log.info("retrying a %s request (attempt %d): %s", self.api, failed_attempt, _short(error))

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
        for endpoint in self.pool.endpoints:
            for client in endpoint.clients:
                await client.close()


def request_body(request: TeacherRequest, api: Api, model: str, dialect: str = OPENAI_SCHEMA) -> dict[str, Any]:
    """The JSON body of a chat or completions request (batch mode writes the same body into its files)."""
    decoding = request.decoding
    body: dict[str, Any] = {
        "model": model, "temperature": decoding.temperature, "top_p": decoding.top_p,
        "presence_penalty": decoding.presence_penalty, "frequency_penalty": decoding.frequency_penalty,
        "max_tokens": decoding.max_tokens,
    }
    if decoding.stop:
        body["stop"] = list(decoding.stop)
    if request.response_format is not None:
        body["response_format"] = _response_format(request.response_format, dialect)
    if api == "chat":
        body["messages"] = [{"role": "user", "content": request.prompt}]
    else:
        body["prompt"] = request.prompt
    return body


@functools.lru_cache(maxsize=16)
def _response_format(text: str, dialect: str) -> dict[str, Any]:
    """The body's response_format from a request's (OpenAI json_schema) one, parsed once per schema.

    llama-cpp-python's server (the bundled `cpu` teacher) takes a schema only as {"type": "json_object",
    "schema": ...}; vLLM, llama.cpp's llama-server and the OpenAI API take OpenAI's json_schema form.
    """
    value = json.loads(text)
    if dialect == LLAMA_CPP_PYTHON and value.get("type") == "json_schema":
        return {"type": "json_object", "schema": value["json_schema"]["schema"]}
    return value


def _read_reply(content: bytes, api: Api, seconds: float) -> TeacherReply:
    """The first choice of a completion body; BadReply when the body is not one."""
    data, choices = _parse_body(content)
    text, finish = _choice_text(choices[0], api)
    usage = data.get("usage") or {}
    return TeacherReply(text=text, finish_reason=finish, prompt_tokens=usage.get("prompt_tokens") or 0,
                        completion_tokens=usage.get("completion_tokens") or 0, seconds=seconds)


def _read_batch(content: bytes, prompt_chars: list[int], seconds: float) -> list[TeacherReply | Exception]:
    """One outcome per prompt of a completions batch, from the choice with that prompt's index.

    The body's token counts cover the batch: each prompt gets a share in proportion to its
    prompt's and its reply's length, and the shares add up to the totals, so budgets stay exact.
    """
    data, choices = _parse_body(content)
    by_index: dict[int, object] = {}
    for position, choice in enumerate(choices):
        index = choice.get("index", position) if isinstance(choice, dict) else position
        by_index.setdefault(index if isinstance(index, int) else position, choice)
    read: list[tuple[str, str | None] | BadReply] = []
    for index in range(len(prompt_chars)):
        if index not in by_index:
            read.append(BadReply(f"the server answered no choice for prompt {index} of the batch", EMPTY_CHOICES))
            continue
        try:
            read.append(_choice_text(by_index[index], "completions"))
        except BadReply as err:
            read.append(err)
    usage = data.get("usage") or {}
    answered = [(chars, item) for chars, item in zip(prompt_chars, read) if not isinstance(item, BadReply)]
    prompt_shares = iter(_shares(usage.get("prompt_tokens"), [chars for chars, _ in answered]))
    completion_shares = iter(_shares(usage.get("completion_tokens"), [len(text) + 1 for _, (text, _) in answered]))
    outcomes: list[TeacherReply | Exception] = []
    for item in read:
        if isinstance(item, BadReply):
            outcomes.append(item)
        else:
            outcomes.append(TeacherReply(text=item[0], finish_reason=item[1], prompt_tokens=next(prompt_shares),
                                         completion_tokens=next(completion_shares), seconds=seconds))
    return outcomes


def _parse_body(content: bytes) -> tuple[dict[str, Any], list[Any]]:
    try:
        data = json.loads(content)
        choices = data.get("choices")
    except (ValueError, AttributeError):
        raise BadReply("the server answered with malformed JSON", MALFORMED) from None
    if not choices:
        raise BadReply("the server answered with no choices", EMPTY_CHOICES)
    if not isinstance(choices, list):
        raise BadReply("the server answered with a choice of the wrong shape", MALFORMED)
    return data, choices


def _choice_text(choice: Any, api: Api) -> tuple[str, str | None]:
    """(text, finish_reason) of one choice; BadReply when it has the wrong shape."""
    try:
        # JSON escapes can carry lone surrogates ("\ud800"), which no UTF-8 writer (SQLite, files) accepts.
        text = replace_lone_surrogates((choice["message"]["content"] if api == "chat" else choice["text"]) or "")
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise TypeError(finish)
        return text, replace_lone_surrogates(finish) if finish else finish
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        raise BadReply("the server answered with a choice of the wrong shape", MALFORMED) from None


def _shares(total: Any, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders), summing to `total` exactly."""
    total = total if isinstance(total, int) and total > 0 else 0
    if not any(weights):
        weights = [1] * len(weights)
    exact = [total * weight / sum(weights) for weight in weights]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: shares[i] - exact[i])[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _error_of(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


def _short(error: BaseException | None) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, BadReply):
        return str(error)
    return type(error).__name__ if error else "unknown"


def _describe(error: BaseException, attempts: int) -> str:
    # Name the failure and the endpoint, never the request headers (they hold the key).
    where = ""
    request = getattr(error, "request", None)
    if request is not None:
        where = f" from {request.url.scheme}://{request.url.host}:{request.url.port}"
    return f"teacher request failed{where} after {attempts} attempt(s): {_short(error)} ({error_class(error)})"
