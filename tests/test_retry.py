import random

import httpx
import openai
import pytest

from selfinstruct.teacher.retry import MAX_BACKOFF, MAX_WAIT, BadReply, retry_after, should_retry, wait_seconds

REQUEST = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def _status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx.Response(status, headers=headers or {}, request=REQUEST)
    kind = {429: openai.RateLimitError, 400: openai.BadRequestError, 401: openai.AuthenticationError}.get(
        status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return kind("error", response=response, body=None)


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (_status_error(429), True),
        (_status_error(500), True),
        (_status_error(503), True),
        (_status_error(408), True),
        (_status_error(400), False),
        (_status_error(401), False),
        (openai.APITimeoutError(request=REQUEST), True),
        (openai.APIConnectionError(request=REQUEST), True),
        (BadReply("no choices"), True),
        (ValueError("ours"), False),
    ],
)
def test_should_retry(error: BaseException, retry: bool) -> None:
    assert should_retry(error) is retry


def test_retry_after_header_wins_and_is_capped() -> None:
    assert retry_after(_status_error(429, {"retry-after": "2"})) == 2.0
    assert retry_after(_status_error(429, {"retry-after-ms": "250"})) == 0.25
    assert wait_seconds(1, _status_error(429, {"retry-after": "3"})) == 3.0
    assert wait_seconds(1, _status_error(429, {"retry-after": "9999"})) == MAX_WAIT


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (10, MAX_BACKOFF)])
def test_backoff_is_jittered_below_an_exponential_ceiling(attempt: int, ceiling: float) -> None:
    rng = random.Random(1)
    waits = [wait_seconds(attempt, _status_error(500), rng) for _ in range(200)]
    assert all(0 <= wait <= ceiling for wait in waits)
    assert len(set(waits)) > 100
