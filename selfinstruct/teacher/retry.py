"""Which failures are worth another try, and how long to wait. Pure functions wired into tenacity."""

from __future__ import annotations

import email.utils
import random
import time

import openai

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_WAIT = 60.0


def should_retry(error: BaseException) -> bool:
    """Timeouts, dropped connections, rate limits and server errors; never a 4xx we caused."""
    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    if isinstance(error, openai.APIResponseValidationError):
        return True  # a malformed body from an overloaded server; the next try is usually clean
    return isinstance(error, BadReply)


class BadReply(Exception):
    """The server answered 200 with a body we cannot use: malformed JSON or no choices."""


def retry_after(error: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if any."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if milliseconds := headers.get("retry-after-ms"):
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def wait_seconds(attempt: int, error: BaseException | None, rng: random.Random | None = None) -> float:
    """Retry-After when the server gives one (capped), else capped exponential backoff with full jitter."""
    hinted = retry_after(error) if error is not None else None
    if hinted is not None:
        return min(hinted, MAX_WAIT)
    ceiling = min(MAX_WAIT, 0.5 * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)
