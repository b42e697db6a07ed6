"""How many prompts an endpoint takes at once, found as TCP finds its window: additive increase while
latency holds, multiplicative decrease on timeouts, 429s and rising latency.

A one-slot server (llama.cpp's `llama_cpp.server`, Ollama, LM Studio) answers the second of two prompts
after the first, so its latency doubles with two in flight and triples with three; a batching server
(vLLM) answers 128 prompts about as fast as one. The controller compares each reply's latency with the
fastest this endpoint has shown for that kind of request (`LatencyFloor`), so it needs no knowledge of the
server: the ratio stays near 1 while the server has room, and grows with the queue once it has none.

It starts at `start` (a few prompts, harmless for any server) and doubles per window of good replies (slow
start) until the first sign of congestion, then grows by one prompt per window. A window is
`min(limit, WINDOW_CAP)` prompts answered; its median latency ratio decides. Growth needs demand: a
window that never had the limit's half in flight says nothing about more (RFC 7661's point), so a limit
does not drift up while the pipeline is idle and flood the server on the next burst.

Pure: the caller passes latencies and in-flight counts; no clock, no I/O.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

NEAR = 1.5  # a window whose median latency is within this factor of the floor has room: grow
QUEUED = 2.5  # beyond this factor the server is queueing our prompts: back off
WINDOW_CAP = 16  # prompts per decision at most, so a wide limit still adapts within a few latencies
OVERLOAD_FACTOR = 0.5  # on a timeout or a 429


@dataclass
class LatencyFloor:
    """The fastest an endpoint has answered one kind of request, as `max(seconds, rate * tokens)`.

    `seconds` is the shortest reply time seen and `rate` the lowest seconds per completion token; the
    larger of the two is a lower envelope under every reply seen, whatever its length, so a long answer
    is not taken for a queued one (a fixed-latency server has rate ~ 0, a token-bound one a large share).
    """

    seconds: float = float("inf")
    rate: float = float("inf")

    def ratio(self, seconds: float, tokens: int) -> float:
        """Learn from one reply, then how many times slower than the floor it was (>= 1)."""
        self.seconds = min(self.seconds, seconds)
        if tokens > 0:
            self.rate = min(self.rate, seconds / tokens)
        floor = max(self.seconds, self.rate * tokens) if tokens > 0 and self.rate != float("inf") else self.seconds
        return seconds / floor if floor > 0 else 1.0


@dataclass
class AimdLimit:
    """The number of prompts to keep in flight on one endpoint, between 1 and `ceiling`."""

    ceiling: int
    start: int = 4
    limit: float = 0.0
    slow_start: bool = True
    epoch: int = 0  # bumped by each decrease; an overload seen by a prompt sent before it is the same event
    decreases: int = 0
    floors: dict[str, LatencyFloor] = field(default_factory=dict)
    _ratios: list[float] = field(default_factory=list)
    _weight: int = 0
    _busy: bool = False

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError("the concurrency ceiling is at least 1")
        self.limit = float(max(1, min(self.start, self.ceiling)))

    @property
    def allowed(self) -> int:
        """Prompts that may be in flight now."""
        return max(1, int(self.limit))

    def answered(self, kind: str, seconds: float, tokens: int, prompts: int, in_flight: int) -> None:
        """A reply to `prompts` prompts (one request) of `kind`, `seconds` after it was sent with `in_flight`
        prompts outstanding on the endpoint (its own included); `tokens` is its longest completion."""
        ratio = self.floors.setdefault(kind, LatencyFloor()).ratio(seconds, tokens)
        demanded = 2 * in_flight >= self.allowed
        if self.slow_start and ratio <= NEAR and demanded:
            self._set(self.limit + prompts)  # one more per prompt answered: doubles every latency
        self._ratios.append(ratio)
        self._weight += prompts
        self._busy = self._busy or demanded
        if self._weight >= min(self.allowed, WINDOW_CAP):
            self._close_window()

    def overloaded(self, sent_in_epoch: int) -> None:
        """A timeout or a 429 for a prompt sent in `sent_in_epoch`; several from one burst halve once."""
        if sent_in_epoch == self.epoch:
            self._decrease(OVERLOAD_FACTOR)

    def _close_window(self) -> None:
        median = statistics.median(self._ratios)
        busy = self._busy
        self._ratios, self._weight, self._busy = [], 0, False
        if median > QUEUED:
            # The queue grows with the limit; cut by as much as the latency rose, at most in half.
            self._decrease(max(OVERLOAD_FACTOR, NEAR / median))
        elif median <= NEAR and busy and not self.slow_start:
            self._set(self.limit + 1)

    def _decrease(self, factor: float) -> None:
        self._set(self.limit * factor)
        self.slow_start = False
        self.epoch += 1
        self.decreases += 1
        self._ratios, self._weight, self._busy = [], 0, False

    def _set(self, limit: float) -> None:
        self.limit = min(float(self.ceiling), max(1.0, limit))
