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
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ..core.config import Api
from ..core.errors import TeacherError, TeacherUnavailable
from .adaptive import AimdLimit
from ..core.teacher_records import TeacherReply, TeacherRequest
from .batching import PromptBatcher
from .bodies import read_batch as _read_batch
from .bodies import read_reply as _read_reply
from .endpoints import Endpoint, EndpointPool
from .limits import FailureWindow, RateLimiter, TeacherFailing
from .retry import (
    COUNTED_FAILURES, RATE_LIMITED, TIMEOUT, BadReply, error_class, should_retry, unreachable_cause, wait_seconds,
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
PROBE_TIMEOUT = 10.0  # seconds a GET /models may take before the endpoint counts as not answering
# A batch's sequences run side by side on a batching server, but it waits for the longest of its n and a
# server with fewer free slots queues the rest: it gets more time than one prompt, growing with its size,
# so one slow sequence does not make the other prompts be sent again (32 prompts: 3x the timeout).
BATCH_TIMEOUT_GROWTH = 1 / 16
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
    retry_budget: float = 600.0  # seconds to keep retrying connection errors, timeouts, 429 and 5xx
    adaptive: bool = True  # find each endpoint's concurrency (adaptive.py); `concurrency` is the ceiling
    start_concurrency: int = 2
    schema_dialect: str = OPENAI_SCHEMA  # how the server takes a JSON schema (see wire_response_format)
    retries: int = 0
    # Each endpoint's adaptive limit by base URL, kept by the caller: a later client of the same run (the Prefect
    # flow's next task of rounds) starts at what this one found instead of ramping up from `start_concurrency`.
    limits: dict[str, AimdLimit] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise TeacherError("no teacher endpoint to send requests to")
        shards = math.ceil(self.concurrency / CONNECTIONS_PER_CLIENT)
        per_client = min(self.concurrency, CONNECTIONS_PER_CLIENT)
        # One TLS context for all clients: building one loads the CA bundle (0.1 s each, measured).
        self._tls = create_ssl_context()
        self.pool: EndpointPool[openai.AsyncOpenAI] = EndpointPool(
            [Endpoint(url, [self._client(url, per_client) for _ in range(shards)], limit=self._limit(url))
             for url in self.base_urls],
            probe=self._probe, describe=_why, outage_budget=self.retry_budget)
        self.limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute)
        self.health = FailureWindow(self.failure_window, self.failure_threshold)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._path = "/chat/completions" if self.api == "chat" else "/completions"
        self._reachable: asyncio.Future[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._batcher: PromptBatcher | None = None
        if self.batch_prompts > 1:
            if self.api != "completions":
                raise TeacherError("batching prompts needs the completions API: a chat request holds one conversation")
            self._batcher = PromptBatcher(self._send_batch, self.batch_prompts)

    def _limit(self, url: str) -> AimdLimit | None:
        if not self.adaptive:
            return None
        if self.limits is None:
            return AimdLimit(ceiling=self.concurrency, start=self.start_concurrency)
        kept = self.limits.get(url)
        if kept is not None and kept.ceiling == self.concurrency:
            kept.resume()
            log.info("teacher %s: adaptive limit %d, as the last client of this run left it", url, kept.allowed)
            return kept
        self.limits[url] = AimdLimit(ceiling=self.concurrency, start=self.start_concurrency)
        return self.limits[url]

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
        """The reply to `request`; raises TeacherRequestFailed once its attempts or its retry budget are used
        up, TeacherUnavailable when no endpoint has answered since the start or the teacher stays down."""
        self.raise_if_failing()
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)  # close() cancels what is still retrying, so nothing outlives the clients
        try:
            await self._check_reachable()
            reply = await self._with_retries(request, usage)
        except (openai.OpenAIError, BadReply) as err:
            kind = error_class(err)
            self.health.record(kind)
            raise TeacherRequestFailed(_describe(err), kind) from None
        finally:
            self._running.discard(task)  # type: ignore[arg-type]
        self.health.record(None)
        return reply

    async def _with_retries(self, request: TeacherRequest, usage: Usage | None) -> TeacherReply:
        """Every attempt of one request, through tenacity: backoff with jitter, Retry-After honoured."""
        alone = False  # after a batched attempt timed out, the prompt goes on its own
        failing_since: list[float] = []  # the budget runs from the first failure, not from the queue's wait
        retrying = AsyncRetrying(
            retry=retry_if_exception(should_retry), reraise=True,
            stop=lambda state: self._out_of_budget(state, failing_since),
            wait=lambda state: wait_seconds(state.attempt_number, _error_of(state)),
            before_sleep=lambda state: self._count_retry(state.attempt_number, _error_of(state)),
        )
        async for attempt in retrying:
            with attempt:
                try:
                    reply = await self._attempt(request, usage, alone)
                except openai.APITimeoutError:
                    alone = self._batcher is not None
                    raise
        return reply

    def _out_of_budget(self, state: RetryCallState, failing_since: list[float]) -> bool:
        """Answered failures (malformed, no choices) stop after max_attempts; the rest once the request has
        been failing for retry_budget s (waiting for a slot before its first attempt does not count)."""
        now = time.monotonic()
        if not failing_since:
            failing_since.append(now)
        error = _error_of(state)
        if error is not None and error_class(error) in COUNTED_FAILURES:
            return state.attempt_number >= self.max_attempts
        return now - failing_since[0] >= self.retry_budget

    async def _attempt(self, request: TeacherRequest, usage: Usage | None, alone: bool = False) -> TeacherReply:
        # The slot is held for the attempt only, not for the backoff sleep between attempts; a batched
        # prompt holds one too, so `concurrency` counts prompts in flight, as a server's batch does.
        async with self._slots:
            try:
                if self._batcher is not None and not alone:
                    return await self._batcher.submit(request)
                tokens = len(request.prompt) // CHARS_PER_TOKEN + request.decoding.max_tokens
                return await self._post(self._body(request), tokens, self._read_one, kind=request.stage)
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
        return await self._post(body, tokens, lambda content, seconds: _read_batch(content, prompt_chars, seconds),
                                len(requests), requests[0].stage)

    def _read_one(self, content: bytes, seconds: float) -> TeacherReply:
        return _read_reply(content, self.api, seconds)

    async def _post(self, body: dict[str, Any], tokens: int, read: Callable[[bytes, float], _Read],
                    prompts: int = 1, kind: str = "") -> _Read:
        """POST to the least loaded endpoint with room, within the rate limits; `read` turns the body into
        replies. A body `read` rejects (BadReply) counts against the endpoint, like an HTTP error. `kind`
        (the stage) tells the adaptive limit which replies to compare with each other.
        """
        await self.limiter.acquire(tokens)
        endpoint = await self.pool.acquire(prompts)
        limit, in_flight = endpoint.limit, endpoint.outstanding
        epoch = limit.epoch if limit is not None else 0
        shard = endpoint.take_client()
        options: Any = {"timeout": self.timeout * (1 + (prompts - 1) * BATCH_TIMEOUT_GROWTH)} if prompts > 1 else {}
        started = time.perf_counter()
        outcome: str | None = "cancelled"  # neither a success nor an endpoint fault
        unreachable: str | None = None
        try:
            response = await endpoint.clients[shard].post(self._path, cast_to=Response, body=body, options=options)
            seconds = time.perf_counter() - started
            result = read(response.content, seconds)
            outcome = None
            if limit is not None:
                before = limit.allowed
                limit.answered(seconds, _longest(result), prompts, in_flight, epoch, started + seconds, kind)
                if limit.allowed < before:
                    log.info("teacher %s: latency rose, %d prompts in flight at most now", endpoint.base_url,
                             limit.allowed)
            if log.isEnabledFor(logging.DEBUG):  # one line per reply (bench/single_slot_bench.py reads them)
                log.debug("teacher %s: reply in %.6f s, %d tokens, %d prompts, %d in flight at send, limit %d, "
                          "epoch %d, at %.6f, kind %s", endpoint.base_url, seconds, _longest(result), prompts,
                          in_flight, limit.allowed if limit is not None else self.concurrency, epoch,
                          started + seconds, kind)
        except (openai.OpenAIError, BadReply) as err:
            outcome = error_class(err)
            unreachable = unreachable_cause(err)
            if limit is not None and outcome in (TIMEOUT, RATE_LIMITED) and epoch == limit.epoch:
                limit.overloaded(epoch)
                log.info("teacher %s: %s, %d prompts in flight at most now", endpoint.base_url, outcome,
                         limit.allowed)
            raise
        finally:
            endpoint.give_client(shard)
            self.pool.release(endpoint, outcome, prompts, unreachable)
        self.limiter.observe(response.headers)
        return result

    async def _check_reachable(self) -> None:
        """Once per teacher: probe every endpoint. One that cannot be reached is set aside; none reachable
        (a wrong --base-url, a server not started) raises at once, naming each URL and what happened."""
        if self._reachable is None:
            self._reachable = asyncio.ensure_future(self._probe_all())
        await asyncio.shield(self._reachable)

    async def _probe_all(self) -> None:
        outcomes = await asyncio.gather(*(self._probe(e) for e in self.pool.endpoints), return_exceptions=True)
        failed = [(endpoint, err) for endpoint, err in zip(self.pool.endpoints, outcomes) if err is not None]
        if len(failed) == len(self.pool.endpoints):
            causes = "; ".join(f"{endpoint.base_url}: {_why(err)}" for endpoint, err in failed)
            raise TeacherUnavailable(f"the teacher cannot be reached ({causes}); check --base-url and that the "
                                     f"server is running")
        for endpoint, err in failed:
            log.warning("teacher endpoint %s cannot be reached (%s); set aside", endpoint.base_url, _why(err))
            endpoint.last_error, endpoint.unanswered = _why(err), True
            self.pool.set_aside(endpoint)

    async def _probe(self, endpoint: Endpoint[openai.AsyncOpenAI]) -> None:
        """Returns when the endpoint answers GET /models with any HTTP status (a 401 or 404 is an answer)."""
        try:
            await endpoint.clients[0].get("/models", cast_to=Response, options={"timeout": PROBE_TIMEOUT})
        except openai.APIStatusError:
            return

    def _body(self, request: TeacherRequest) -> dict[str, Any]:
        return request_body(request, self.api, self.model, self.schema_dialect)

    def _count_retry(self, failed_attempt: int, error: BaseException | None) -> None:
        self.retries += 1
        log.info("retrying a %s request (attempt %d failed): %s", self.api, failed_attempt, _short(error))

    async def close(self) -> None:
        for endpoint in self.pool.endpoints:
            if endpoint.limit is not None and endpoint.sent:
                log.info("teacher %s: at most %d prompts in flight (%d after the first cut), adaptive limit %d at the "
                         "end (%d decreases)", endpoint.base_url, endpoint.max_outstanding,
                         endpoint.limit.settled_peak, endpoint.limit.allowed, endpoint.limit.decreases)
        if self._reachable is not None and not self._reachable.done():
            self._reachable.cancel()
        running = [task for task in self._running if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.pool.close()
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
        body["response_format"] = wire_response_format(request.response_format, dialect)
    if api == "chat":
        body["messages"] = [{"role": "user", "content": request.prompt}]
    else:
        body["prompt"] = request.prompt
    return body


@functools.lru_cache(maxsize=16)
def wire_response_format(text: str, dialect: str) -> dict[str, Any]:
    """The body's response_format from a request's (OpenAI json_schema) one, parsed once per schema.

    llama-cpp-python's server (the bundled `cpu` teacher) takes a schema only as {"type": "json_object",
    "schema": ...}; vLLM, llama.cpp's llama-server and the OpenAI API take OpenAI's json_schema form.
    """
    value = json.loads(text)
    if dialect == LLAMA_CPP_PYTHON and value.get("type") == "json_schema":
        return {"type": "json_object", "schema": value["json_schema"]["schema"]}
    return value


def _error_of(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


def _short(error: BaseException | None) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, BadReply):
        return str(error)
    return type(error).__name__ if error else "unknown"


def _longest(result: object) -> int:
    """Completion tokens of the longest reply in `result` (one reply, or a batch's outcomes)."""
    if isinstance(result, TeacherReply):
        return result.completion_tokens
    if isinstance(result, list):
        return max((r.completion_tokens for r in result if isinstance(r, TeacherReply)), default=0)
    return 0


def _why(error: BaseException) -> str:
    """What happened when we tried to reach an endpoint, for a person."""
    cause = unreachable_cause(error)
    if cause is not None:
        return cause
    if isinstance(error, openai.APITimeoutError):
        return f"no answer within {PROBE_TIMEOUT:g} s"
    return _short(error)


def _describe(error: BaseException) -> str:
    # Name the failure and the endpoint, never the request headers (they hold the key).
    where = ""
    request = getattr(error, "request", None)
    if request is not None:
        where = f" from {request.url.scheme}://{request.url.host}:{request.url.port}"
    cause = unreachable_cause(error)
    detail = f"{_short(error)} ({cause or error_class(error)})"
    return f"teacher request failed{where}, out of attempts or retry budget: {detail}"
