"""The one request path: the async OpenAI SDK against any OpenAI-compatible endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..config import Api
from ..errors import TeacherError
from .base import TeacherReply, TeacherRequest
from .retry import BadReply, should_retry, wait_seconds

log = logging.getLogger(__name__)


@dataclass
class _Endpoint:
    base_url: str
    client: openai.AsyncOpenAI
    outstanding: int = 0


@dataclass
class OpenAITeacher:
    """Sends requests to the endpoint with the fewest outstanding, with bounded retries."""

    base_urls: list[str]
    model: str
    api: Api = "chat"
    api_key: str = field(default="not-needed", repr=False)
    timeout: float = 120.0
    max_attempts: int = 5
    concurrency: int = 8
    retries: int = 0

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise TeacherError("no teacher endpoint to send requests to")
        # max_retries=0: tenacity is the only layer that retries, so attempts stay bounded.
        self._endpoints = [
            _Endpoint(url, openai.AsyncOpenAI(base_url=url, api_key=self.api_key, timeout=self.timeout, max_retries=0))
            for url in self.base_urls
        ]
        self._limit = asyncio.Semaphore(self.concurrency)

    async def complete(self, request: TeacherRequest) -> TeacherReply:
        """The reply to `request`; raises TeacherError once its attempts are used up."""
        async with self._limit:
            retrying = AsyncRetrying(
                retry=retry_if_exception(should_retry),
                wait=_tenacity_wait,
                stop=stop_after_attempt(self.max_attempts),
                before_sleep=self._count_retry,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        return await self._send_once(request)
            except (openai.OpenAIError, BadReply) as err:
                raise TeacherError(_describe(err, self.max_attempts)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, request: TeacherRequest) -> TeacherReply:
        endpoint = min(self._endpoints, key=lambda e: e.outstanding)
        endpoint.outstanding += 1
        started = time.perf_counter()
        try:
            reply = await self._call(endpoint.client, request)
        finally:
            endpoint.outstanding -= 1
        return reply.model_copy(update={"seconds": time.perf_counter() - started})

    async def _call(self, client: openai.AsyncOpenAI, request: TeacherRequest) -> TeacherReply:
        decoding = request.decoding
        params = dict(
            model=self.model,
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            presence_penalty=decoding.presence_penalty,
            frequency_penalty=decoding.frequency_penalty,
            max_tokens=decoding.max_tokens,
        )
        if decoding.stop:
            params["stop"] = list(decoding.stop)
        try:
            if self.api == "chat":
                response = await client.chat.completions.create(
                    messages=[{"role": "user", "content": request.prompt}], **params
                )
                text_of = lambda choice: choice.message.content or ""  # noqa: E731
            else:
                response = await client.completions.create(prompt=request.prompt, **params)
                text_of = lambda choice: choice.text or ""  # noqa: E731
        except json.JSONDecodeError:
            # The SDK parses a 200 body without wrapping its JSON errors.
            raise BadReply("the server answered with malformed JSON") from None
        if not getattr(response, "choices", None):
            raise BadReply("the server answered with no choices")
        choice = response.choices[0]
        usage = response.usage
        return TeacherReply(
            text=text_of(choice),
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def _count_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.info("retrying a %s request (attempt %d): %s", self.api, state.attempt_number, _short(error))

    async def close(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.client.close()


def _tenacity_wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    return wait_seconds(state.attempt_number, error)


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
    return f"teacher request failed{where} after {attempts} attempt(s): {_short(error)}"
