"""Rate limits (configured or learned from x-ratelimit-* headers) and the failure window that stops a run."""

from __future__ import annotations

import asyncio

import pytest

from selfinstruct.teacher.limits import FailureWindow, RateLimiter, TokenBucket, parse_reset


class FakeClock:
    """A clock that only moves when the limiter sleeps: waits are exact and instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("12", 12.0),
        ("", None), (None, None), ("soon", None), ("5x", None),
    ],
)
def test_parse_reset(text: str | None, seconds: float | None) -> None:
    assert parse_reset(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_token_bucket_starts_full_and_refills_per_minute() -> None:
    bucket = TokenBucket(per_minute=60)
    assert bucket.wait_for(60, now=0.0) == 0.0
    bucket.take(60)
    assert bucket.wait_for(1, now=0.0) == pytest.approx(1.0)  # 60 a minute: one a second
    assert bucket.wait_for(1, now=0.5) == pytest.approx(0.5)
    assert bucket.wait_for(500, now=0.5) == pytest.approx(59.5)  # more than a bucket waits for a full one


def test_no_limit_known_means_no_waiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        asyncio.run(limiter.acquire(10_000))
    assert clock.slept == [] and limiter.limits == {}


def test_requests_per_minute_paces_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=120, clock=clock, sleep=clock.sleep)

    async def send(n: int) -> None:
        for _ in range(n):
            await limiter.acquire(1)

    asyncio.run(send(120 + 10))
    # A full minute's bucket at once, then one every half second.
    assert clock.now - 1000.0 == pytest.approx(10 * 0.5)


def test_tokens_per_minute_counts_tokens() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)

    async def send() -> None:
        for _ in range(4):
            await limiter.acquire(3000)

    asyncio.run(send())
    assert clock.now - 1000.0 == pytest.approx(60.0)  # 12,000 tokens at 6,000 a minute, the first 6,000 at once


def test_limits_are_learned_from_headers_and_remaining_zero_waits_for_the_reset() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "0",
                     "x-ratelimit-reset-requests": "2s", "x-ratelimit-limit-tokens": "150000"})
    assert limiter.limits == {"requests": 600.0, "tokens": 150000.0}
    asyncio.run(limiter.acquire(100))
    assert clock.now - 1000.0 == pytest.approx(2.0 + 0.1)  # until the reset, then one request at 10 a second


def test_configured_limits_win_over_headers() -> None:
    limiter = RateLimiter(requests_per_minute=50)
    limiter.observe({"x-ratelimit-limit-requests": "5000"})
    assert limiter.limits == {"requests": 50.0}


def test_failure_window_trips_above_the_threshold_once_enough_outcomes_are_in() -> None:
    window = FailureWindow(size=10, threshold=0.5, min_outcomes=4)
    for outcome in ["timeout", None, "timeout"]:
        window.record(outcome)
    assert not window.tripped()  # three outcomes are too few to judge
    window.record(None)
    assert not window.tripped()  # exactly half is not more than half
    window.record("server_error")
    assert window.tripped()
    assert "3 of the last 5 teacher requests failed" in window.describe()
    assert "timeout 2, server_error 1" in window.describe()


def test_failure_window_forgets_old_outcomes() -> None:
    window = FailureWindow(size=4, threshold=0.5, min_outcomes=4)
    for outcome in ["connection"] * 4 + [None] * 3:
        window.record(outcome)
    assert window.rate == 0.25 and not window.tripped()
