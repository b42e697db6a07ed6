"""The ASGI app behind the fake teacher: OpenAI-compatible endpoints, capacity, latency and faults.

Everything runs on the server's one event loop, so the counters need no lock;
readers in other threads copy dicts whose keys never change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .fake_content import KINDS, reply_for, request_kind, structured_reply_for

RATE_LIMITED = "429"
SERVER_ERROR = "500"
UNAVAILABLE = "503"
HANG = "hang"
DROP = "drop"
MALFORMED = "malformed"
LENGTH = "length"
EMPTY_CHOICES = "empty_choices"
FAULTS = (RATE_LIMITED, SERVER_ERROR, UNAVAILABLE, HANG, DROP, MALFORMED, LENGTH, EMPTY_CHOICES)

_WORD = re.compile(r"\S+")
# Cut mid-object, as a proxy that lost the end of the body would.
_MALFORMED_BODY = b'{"id": "cmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "Task'


class FakeTeacherConfig(BaseModel):
    """How the fake teacher behaves. Fault rates are per-request probabilities, drawn with a seeded RNG."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    model: str = "fake-teacher"
    seed: int = 0
    latency: float = Field(0.0, ge=0, description="seconds a request takes once it is being served")
    capacity: int = Field(
        64, ge=1, description="prompts served at once (a list counts each); the rest wait, as in a GPU batch")
    rate_429: float = Field(0.0, ge=0, le=1, description="answer 429 with a Retry-After header")
    retry_after: float = Field(0.05, ge=0, description="seconds sent in Retry-After")
    rate_500: float = Field(0.0, ge=0, le=1, description="answer 500 after the latency")
    rate_503: float = Field(0.0, ge=0, le=1, description="answer 503 at once")
    rate_hang: float = Field(0.0, ge=0, le=1, description="wait hang_seconds before serving, so clients time out")
    hang_seconds: float = Field(30.0, ge=0)
    rate_drop: float = Field(0.0, ge=0, le=1, description="close the connection without a complete response")
    rate_malformed: float = Field(0.0, ge=0, le=1, description="answer 200 with a body that is not valid JSON")
    rate_length: float = Field(0.0, ge=0, le=1, description="cut the reply short with finish_reason 'length'")
    rate_empty_choices: float = Field(0.0, ge=0, le=1, description="answer 200 with choices: []")
    # A plain str (checked by pattern): the command line builds its flags from these annotations.
    style: str = Field(
        "plain", pattern="^(?:plain|chatty|code|json|mixed)$", description="how text replies are written (see fake_styles): the prompt's layout, a chat "
                             "answer with preamble and markdown, code answers, JSON bodies, or a seeded mix")

    @model_validator(mode="after")
    def _rates_fit(self) -> FakeTeacherConfig:
        if sum(self.fault_rates().values()) > 1:
            raise ValueError("the fault rates add up to more than 1")
        return self

    def fault_rates(self) -> dict[str, float]:
        return {fault: getattr(self, f"rate_{fault}") for fault in FAULTS}


class FakeTeacherApp:
    """Serves completions; `stats()` may be called from any thread."""

    def __init__(self, config: FakeTeacherConfig) -> None:
        self.config = config
        self._capacity = asyncio.Semaphore(config.capacity)
        self._fault_rng = random.Random(f"faults:{config.seed}")
        self._fault_table = list(itertools.accumulate(config.fault_rates().values()))
        # Times each prompt was sampled, so repeats differ: one small entry per distinct prompt.
        self._samples: dict[bytes, int] = {}
        self._release = asyncio.Event()
        self._ids = itertools.count(1)
        self._counts: dict[str, float] = {
            "requests": 0, "prompts": 0, "in_flight": 0, "max_concurrent": 0, "waiting": 0, "max_waiting": 0,
            "completion_tokens": 0, "cut_at_max_tokens": 0,
            "busy_seconds": 0.0,  # slot-seconds spent serving: utilization = busy / (capacity * time)
            # Wall-clock (time.time) of the first prompt served and the last one answered, so a benchmark can
            # tell the client's own start-up and wind-down from time the teacher was driven.
            "first_served_at": 0.0, "last_answered_at": 0.0,
        }
        self._kinds = dict.fromkeys(KINDS, 0)
        self._faults = dict.fromkeys(FAULTS, 0)

    def asgi(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
        ])

    def stats(self) -> dict[str, Any]:
        """Counters: requests, prompts (each of a completions list), by kind, faults, concurrency, tokens."""
        return {**self._counts, "by_kind": dict(self._kinds), "faults": dict(self._faults)}

    def answer(self, body: dict, chat: bool) -> dict:
        """The completion body `body` gets when nothing goes wrong (the fake Batch API answers its lines so)."""
        prompts = _prompts_of(body, chat)
        choices = []
        for position, prompt in enumerate(prompts):
            choices += self._choices(body, prompt, request_kind(prompt), chat, False, position)
        return self._envelope(body, prompts, chat, choices)

    def release_hangs(self) -> None:
        """End every hang now (call on the server's loop), so shutdown need not wait for them."""
        self._release.set()

    async def _models(self, request: Request) -> Response:
        model = {"id": self.config.model, "object": "model", "created": 0, "owned_by": "selfinstruct"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _chat(self, request: Request) -> Response:
        return await self._complete(request, chat=True)

    async def _completions(self, request: Request) -> Response:
        return await self._complete(request, chat=False)

    async def _complete(self, request: Request, chat: bool) -> Response:
        try:
            body = await request.json()
            prompts = _prompts_of(body, chat)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, StopIteration):
            return _error(400, "invalid_request_error", "expected a JSON body with 'messages' or 'prompt'")
        if body.get("stream"):
            return _error(400, "invalid_request_error", "the fake teacher does not stream")
        kinds = [request_kind(prompt) for prompt in prompts]
        self._counts["requests"] += 1
        self._counts["prompts"] += len(prompts)
        for kind in kinds:
            self._kinds[kind] += 1
        fault = self._draw_fault()
        if fault == RATE_LIMITED:
            headers = {"Retry-After": f"{self.config.retry_after:g}"}
            return _error(429, "rate_limit_error", "too many requests, slow down", headers)
        if fault == UNAVAILABLE:
            return _error(503, "server_error", "the fake teacher is overloaded")
        if fault == HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.config.hang_seconds)
        # Each prompt of a list is its own sequence, as in vLLM: it takes a slot of the capacity.
        await asyncio.gather(*(self._serve_one() for _ in prompts))
        if fault == SERVER_ERROR:
            return _error(500, "server_error", "the fake teacher failed on purpose")
        if fault == DROP:
            return _DroppedConnection()
        if fault == MALFORMED:
            return Response(_MALFORMED_BODY, media_type="application/json")
        choices = []
        if fault != EMPTY_CHOICES:
            for position, (prompt, kind) in enumerate(zip(prompts, kinds)):
                choices += self._choices(body, prompt, kind, chat, fault == LENGTH, position)
        envelope = self._envelope(body, prompts, chat, choices)
        self._counts["completion_tokens"] += envelope["usage"]["completion_tokens"]
        return JSONResponse(envelope)

    async def _serve_one(self) -> None:
        async with self._serving():
            if self.config.latency:
                await asyncio.sleep(self.config.latency)

    def _draw_fault(self) -> str | None:
        draw = self._fault_rng.random()
        for fault, ceiling in zip(FAULTS, self._fault_table):
            if draw < ceiling:
                self._faults[fault] += 1
                return fault
        return None

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        counts = self._counts
        counts["waiting"] += 1
        counts["max_waiting"] = max(counts["max_waiting"], counts["waiting"])
        try:
            await self._capacity.acquire()
        finally:
            counts["waiting"] -= 1
        counts["in_flight"] += 1
        counts["max_concurrent"] = max(counts["max_concurrent"], counts["in_flight"])
        counts["first_served_at"] = counts["first_served_at"] or time.time()
        started = time.monotonic()
        try:
            yield
        finally:
            counts["in_flight"] -= 1
            counts["busy_seconds"] += time.monotonic() - started
            counts["last_answered_at"] = time.time()
            self._capacity.release()

    def _choices(self, body: dict, prompt: str, kind: str, chat: bool, cut_short: bool, position: int) -> list[dict]:
        """The `n` choices of the prompt at `position` in the list (indexes position * n ...)."""
        rng = self._content_rng(body, prompt)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        stops = body.get("stop") or ()
        stops = [stops] if isinstance(stops, str) else stops
        choices = []
        samples = int(body.get("n") or 1)
        for index in range(position * samples, (position + 1) * samples):
            # A server that honours response_format answers the JSON object its schema describes, as vLLM and
            # llama.cpp do with constrained decoding; stop strings do not apply to it.
            if body.get("response_format"):
                text, finish = _finish(structured_reply_for(kind, prompt, rng), (), max_tokens)
            else:
                text, finish = _finish(reply_for(kind, prompt, rng, self.config.style), stops, max_tokens)
            if finish == "length":
                self._counts["cut_at_max_tokens"] += 1
            if cut_short:
                words = len(text.split())
                text, finish = _cut_words(text, max(1, int(words * rng.uniform(0.3, 0.8)))), "length"
            content = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            choices.append({"index": index, **content, "finish_reason": finish, "logprobs": None})
        return choices

    def _content_rng(self, body: dict, prompt: str) -> random.Random:
        """Same prompt, temperature and sample number give the same reply; each repeat at T > 0 is a new sample."""
        digest = hashlib.blake2b(prompt.encode(), digest_size=16).digest()
        temperature = float(1.0 if body.get("temperature") is None else body["temperature"])
        sample = body.get("seed")
        if sample is None:
            sample = self._samples.get(digest, 0) if temperature > 0 else 0
            if temperature > 0:
                self._samples[digest] = sample + 1
        material = digest + f"|{self.config.seed}|{temperature}|{sample}".encode()
        return random.Random(int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "little"))

    def _envelope(self, body: dict, prompts: list[str], chat: bool, choices: list[dict]) -> dict:
        prompt_tokens = sum(len(prompt.split()) for prompt in prompts)
        texts = (choice["message"]["content"] if chat else choice["text"] for choice in choices)
        completion_tokens = sum(len(text.split()) for text in texts)
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake{next(self._ids):08d}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model") or self.config.model,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


def _prompts_of(body: dict, chat: bool) -> list[str]:
    """The prompt texts: the last user message for chat; the prompt, or each of a list, for completions."""
    if not chat:
        prompt = body["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise TypeError("prompt must be a string or a non-empty list of strings")
        return prompts
    message = next(m for m in reversed(body["messages"]) if m.get("role") == "user")
    content = message["content"]
    if isinstance(content, str):
        return [content]
    return ["".join(part.get("text", "") for part in content)]


def _finish(text: str, stops: list[str], max_tokens: int | None) -> tuple[str, str]:
    """Apply stop sequences, then the token budget (a token is a whitespace-separated word)."""
    for stop in stops:
        if stop and (at := text.find(stop)) >= 0:
            text = text[:at]
    if max_tokens is not None and len(text.split()) > max_tokens:
        return _cut_words(text, max_tokens), "length"
    return text, "stop"


def _cut_words(text: str, words: int) -> str:
    """The text up to the end of its `words`-th word, keeping the whitespace between words."""
    if words <= 0:
        return ""
    last = next(itertools.islice(_WORD.finditer(text), words - 1, None), None)
    return text[:last.end()] if last else text


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return JSONResponse(body, status_code=status, headers=headers)


class ConnectionDropped(Exception):
    """Raised after the response has started, which makes uvicorn close the connection."""


class _DroppedConnection(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Headers promise a body that never comes; the client sees the peer close mid-response.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")]})
        raise ConnectionDropped("dropped on purpose")


class _QuietDrops(logging.Filter):
    """Keep uvicorn from logging a traceback for every connection we drop on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


_QUIET_DROPS = _QuietDrops()


def quiet_dropped_connections() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _QUIET_DROPS not in logger.filters:
        logger.addFilter(_QUIET_DROPS)
