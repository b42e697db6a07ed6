"""How many prompts an endpoint takes at once, found as TCP finds its window: additive increase while
latency holds, multiplicative decrease on timeouts, 429s and rising latency.

A one-slot server (llama.cpp's `llama_cpp.server`, Ollama, LM Studio) answers the second of two prompts
after the first, so its latency doubles with two in flight and triples with three; a batching server
(vLLM) answers 128 prompts about as fast as one. The controller compares each reply's latency with the
fastest this endpoint has shown for that kind of request (`LatencyFloor`), so it needs no knowledge of the
server: the ratio stays near 1 while the server has room, and grows with the queue once it has none. One
floor serves every kind of request (short classify answers calibrate its seconds, long instance answers its
rate per token), so a kind first seen while the server was queueing inherits a floor learned without one.

It starts at `start` (a few prompts, harmless for any server) and doubles per window of good replies (slow
start) until the first sign of congestion, then grows by one prompt per window. A window is at least
`min(limit, WINDOW_CAP)` prompts answered over at least WINDOW_FLOORS times the fastest reply (so a pause
of our own event loop, e.g. a round's commit, cannot fill one); its median latency ratio decides. Growth needs demand: a
window that never had the limit's half in flight says nothing about more (RFC 7661's point), so a limit
does not drift up while the pipeline is idle and flood the server on the next burst.

Latency can rise for reasons that are not our queue: a client short of CPU (its event loop answers late),
another tenant on the server. So a cut made for latency is checked by the next window, made of prompts
sent after the cut: if the latency did not fall with the load, the cut is undone and the floors are
raised to the new normal, instead of halving again and again for nothing.

Pure: the caller passes latencies and in-flight counts; no clock, no I/O.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

NEAR = 1.5  # a window whose median latency is within this factor of the floor has room: grow
QUEUED = 3.0  # beyond this factor the server is queueing our prompts: back off (a one-slot server at 2 in
# flight answers at about 2x, so it holds there: between NEAR and QUEUED nothing changes)
HELPED = 0.8  # a cut that did not bring the median below this share of what caused it was not about our load
WINDOW_CAP = 16  # prompts per decision at most, so a wide limit still adapts within a few latencies
WINDOW_FLOORS = 2.0  # a window lasts at least this many times the fastest reply seen
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
    floor: LatencyFloor = field(default_factory=LatencyFloor)
    _ratios: list[float] = field(default_factory=list)
    _weight: int = 0
    _busy: bool = False
    _checking: tuple[float, float] | None = None  # (limit before, median that caused it) of a latency cut
    _opened: float | None = None  # when the current window's first reply came

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError("the concurrency ceiling is at least 1")
        self.limit = float(max(1, min(self.start, self.ceiling)))

    @property
    def allowed(self) -> int:
        """Prompts that may be in flight now."""
        return max(1, int(self.limit))

    def answered(self, seconds: float, tokens: int, prompts: int, in_flight: int, epoch: int, now: float) -> None:
        """A reply to `prompts` prompts (one request), `seconds` after it was sent in `epoch` with `in_flight`
        prompts outstanding on the endpoint (its own included); `tokens`: its longest completion; `now`: when
        it came (any monotonic clock)."""
        ratio = self.floor.ratio(seconds, tokens)
        if epoch != self.epoch:
            return  # sent before the last cut: its latency holds the queue the cut was for
        if self._opened is None:
            self._opened = now
        demanded = 2 * in_flight >= self.allowed
        if self.slow_start and ratio <= NEAR and demanded:
            self._set(self.limit + prompts)  # one more per prompt answered: doubles every latency
        self._ratios.append(ratio)
        self._weight += prompts
        self._busy = self._busy or demanded
        if self._weight >= min(self.allowed, WINDOW_CAP) and now - self._opened >= WINDOW_FLOORS * self.floor.seconds:
            self._close_window()

    def overloaded(self, sent_in_epoch: int) -> None:
        """A timeout or a 429 for a prompt sent in `sent_in_epoch`; several from one burst halve once."""
        if sent_in_epoch == self.epoch:
            self._checking = None
            self._decrease(OVERLOAD_FACTOR)

    def _close_window(self) -> None:
        median = statistics.median(self._ratios)
        busy = self._busy
        self._ratios, self._weight, self._busy, self._opened = [], 0, False, None
        checking, self._checking = self._checking, None
        if checking is not None and median > QUEUED and median >= checking[1] * HELPED:
            self._rebase(median)  # less load, same latency: not our queue; this latency is the new normal
            self._set(checking[0])
        elif median > QUEUED:
            # The queue grows with the limit; cut by as much as the latency rose, at most in half.
            self._checking = (self.limit, median)
            self._decrease(max(OVERLOAD_FACTOR, NEAR / median))
        elif median <= NEAR and busy and not self.slow_start:
            self._set(self.limit + 1)

    def _decrease(self, factor: float) -> None:
        self._set(self.limit * factor)
        self.slow_start = False
        self.epoch += 1
        self.decreases += 1
        self._ratios, self._weight, self._busy, self._opened = [], 0, False, None

    def _rebase(self, factor: float) -> None:
        self.floor.seconds *= factor
        self.floor.rate *= factor

    def _set(self, limit: float) -> None:
        self.limit = min(float(self.ceiling), max(1.0, limit))
