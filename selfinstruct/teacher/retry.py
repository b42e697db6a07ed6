"""Which failures are worth another try, how long to wait, and what bounds the tries. Pure functions wired
into tenacity (openai_compat.py).

Two budgets: a failure the server answered (a malformed body, no choices) is tried `max_attempts` times, as
trying it again rarely helps for long; a failure that says the server is away or busy (connection errors,
timeouts, 408/409/429, 5xx) is retried for a time (`retry_budget`), so a restart or a preemption of a few
minutes costs no request.
"""

from __future__ import annotations

import email.utils
import random
import errno
import socket
import ssl
import time
from collections.abc import Iterator

import openai

try:  # the SDK's aiohttp transport (openai_compat.py uses it when installed)
    from aiohttp import ServerDisconnectedError
except ImportError:  # pragma: no cover - without it the SDK uses httpx, whose disconnect is an APIConnectionError
    ServerDisconnectedError = ()  # type: ignore[assignment,misc]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_WAIT = 60.0  # the longest Retry-After we honour
MAX_BACKOFF = 8.0  # backoff ceiling without a hint: an outage is waited out by probing (endpoints.py), not sleeping

# Error classes: stable names for counters, dead letters and the run summary.
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION = "connection"
MALFORMED = "malformed"
EMPTY_CHOICES = "empty_choices"
CLIENT_ERROR = "client_error"
OTHER = "other"
ERROR_CLASSES = (RATE_LIMITED, SERVER_ERROR, TIMEOUT, CONNECTION, MALFORMED, EMPTY_CHOICES, CLIENT_ERROR, OTHER)
# Failures that say something about the endpoint itself (not about our request or our rate).
ENDPOINT_FAULTS = frozenset({SERVER_ERROR, TIMEOUT, CONNECTION, MALFORMED, EMPTY_CHOICES})
# Failures retried for `max_attempts` tries; every other retryable one for `retry_budget` seconds.
COUNTED_FAILURES = frozenset({MALFORMED, EMPTY_CHOICES})


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

    def __init__(self, message: str, error_class: str = MALFORMED):
        super().__init__(message)
        self.error_class = error_class


def error_class(error: BaseException) -> str:
    """The class of a failed attempt, one of ERROR_CLASSES."""
    if isinstance(error, BadReply):
        return error.error_class
    # The SDK's aiohttp transport calls a refused connect a timeout, and so a server that went away mid-request
    # (killed, restarted): neither says the server was too slow, and a timeout cuts the adaptive limit.
    if unreachable_cause(error) is not None or _disconnected(error):
        return CONNECTION
    if isinstance(error, openai.APITimeoutError):  # before its base class, APIConnectionError
        return TIMEOUT
    if isinstance(error, openai.APIConnectionError):
        return CONNECTION
    if isinstance(error, openai.APIStatusError):
        if error.status_code == 429:
            return RATE_LIMITED
        if error.status_code == 408:
            return TIMEOUT
        return SERVER_ERROR if error.status_code >= 500 else CLIENT_ERROR
    if isinstance(error, openai.APIResponseValidationError):
        return MALFORMED
    return OTHER


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
    ceiling = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)


def unreachable_cause(error: BaseException) -> str | None:
    """Why no connection was made (refused, name not resolved, TLS), from the exception's chain; None when a
    connection was made or the cause is unknown. Both transports of the SDK wrap these several times over."""
    for current in _chain(error):
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return f"name not resolved ({current.strerror or current})"
        if isinstance(current, OSError) and current.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "host unreachable"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({getattr(current, 'reason', None) or current})"
    return None


def _disconnected(error: BaseException) -> bool:
    """Whether a connection that was made closed before the answer: the server was killed or restarted."""
    return any(isinstance(current, (ConnectionResetError, BrokenPipeError, ServerDisconnectedError))
               for current in _chain(error))


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and its causes; both transports of the SDK wrap the one that says what happened several times."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
