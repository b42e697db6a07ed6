"""Requests- and tokens-per-minute limits, and the failure rate that stops a run.

A limit is known from the config or learned from the provider's `x-ratelimit-*` response headers
(OpenAI sends `x-ratelimit-limit-requests`, `-remaining-requests`, `-reset-requests` and the same
for tokens). With no limit known the limiter costs nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from ..core.errors import TeacherError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_reset(text: str | None) -> float | None:
    """Seconds in a reset header: '6m0s', '1.5s', '20ms', '1h2m' or a bare number of seconds."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class TokenBucket:
    """`per_minute` units a minute, refilled continuously; starts full, as a fresh provider window does."""

    per_minute: float
    level: float | None = None  # None until first used; negative while waiting out a provider's reset
    updated: float = 0.0

    def refill(self, now: float) -> None:
        if self.level is None:
            self.level, self.updated = self.per_minute, now
        self.level = min(self.per_minute, self.level + (now - self.updated) * self.per_minute / 60.0)
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` can be taken (0 when it can now). More than a full bucket waits for a full one."""
        self.refill(now)
        assert self.level is not None
        missing = min(amount, self.per_minute) - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.per_minute

    def take(self, amount: float) -> None:
        assert self.level is not None
        self.level -= amount

    def sync(self, remaining: int | None, reset: float | None, now: float) -> None:
        """Never believe we have more left than the provider says; empty until its reset if it says 0."""
        self.refill(now)
        if remaining is not None:
            self.level = min(self.level or 0.0, float(remaining))
        if remaining == 0 and reset:
            self.level = -reset * self.per_minute / 60.0  # refills to 0 exactly at the reset


@dataclass
class RateLimiter:
    """Paces requests under requests-per-minute and tokens-per-minute limits."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Configured limits win over what headers say; headers only fill in what is unknown.
        self._configured = {kind for kind, value in (("requests", self.requests_per_minute),
                                                     ("tokens", self.tokens_per_minute)) if value}
        for kind, value in (("requests", self.requests_per_minute), ("tokens", self.tokens_per_minute)):
            if value:
                self._buckets[kind] = TokenBucket(float(value))

    @property
    def limits(self) -> dict[str, float]:
        return {kind: bucket.per_minute for kind, bucket in self._buckets.items()}

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of about `tokens` tokens fits both limits, then count it."""
        if not self._buckets:
            return
        wanted = {"requests": 1.0, "tokens": float(tokens)}
        while True:
            now = self.clock()
            wait = max(bucket.wait_for(wanted[kind], now) for kind, bucket in self._buckets.items())
            if wait <= 0:
                for kind, bucket in self._buckets.items():
                    bucket.take(wanted[kind])
                return
            await self.sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn limits and what is left from `x-ratelimit-*` headers of a response."""
        now = self.clock()
        for kind in ("requests", "tokens"):
            limit = _int_header(headers, f"x-ratelimit-limit-{kind}")
            if limit and kind not in self._configured:
                bucket = self._buckets.setdefault(kind, TokenBucket(float(limit)))
                bucket.per_minute = float(limit)
            if kind in self._buckets:
                remaining = _int_header(headers, f"x-ratelimit-remaining-{kind}")
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                self._buckets[kind].sync(remaining, reset, now)


class TeacherFailing(TeacherError):
    """Too many recent requests failed: the run stops instead of spinning (never dead-lettered)."""


@dataclass
class FailureWindow:
    """Outcomes of the last `size` requests (after their retries). Judged once `min_outcomes` are in."""

    size: int = 200
    threshold: float = 0.5
    min_outcomes: int = 20
    _outcomes: deque[str | None] = field(default_factory=deque)
    _failures: int = 0

    def record(self, error_class: str | None) -> None:
        """None for an answered request, else the class of its last error."""
        self._outcomes.append(error_class)
        self._failures += error_class is not None
        if len(self._outcomes) > self.size:
            self._failures -= self._outcomes.popleft() is not None

    @property
    def rate(self) -> float:
        return self._failures / len(self._outcomes) if self._outcomes else 0.0

    def tripped(self) -> bool:
        return len(self._outcomes) >= min(self.min_outcomes, self.size) and self.rate > self.threshold

    def describe(self) -> str:
        causes = Counter(outcome for outcome in self._outcomes if outcome is not None)
        listed = ", ".join(f"{cause} {count}" for cause, count in causes.most_common())
        return (f"{self._failures} of the last {len(self._outcomes)} teacher requests failed after all their "
                f"attempts ({listed}), more than the failure threshold of {self.threshold:.0%}")
