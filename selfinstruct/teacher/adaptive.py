"""How many prompts an endpoint takes at once, found as TCP finds its window: grow while more prompts in
flight buy more throughput, back off on timeouts, 429s and queueing.

A one-slot server (llama.cpp's `llama_cpp.server`, Ollama, LM Studio) answers the second of two prompts
after the first, so its latency doubles with two in flight and triples with three while its throughput
stays the same; a batching server (vLLM) answers 128 prompts about as fast as one. Two signals:

- **Did more load buy throughput?** (the main one, as TCP Vegas compares expected and actual rates.) Each
  window of replies has a load, the mean prompts in flight when they were sent, and a latency, scaled by
  how long each reply would take alone (`LatencyFloor`, so a window of long answers is not taken for a
  queued one). By Little's law throughput is load over latency; between two windows whose loads differ
  by a quarter or more, the share of the load change that went into latency says where the server is:
  near 0 it had room, near 1 (latency proportional to load) it was already full and the extra prompts only
  queued. Full after an increase: back to the lower load, then halve while throughput holds, to find the
  smallest load that keeps the server busy (on one slot: one); the next probe upward waits a number of
  windows that doubles with each probe that found no room. A cut after which throughput fell with the load
  (not our queue: a client short of CPU, another tenant) is undone. This signal needs no absolute floor,
  so it holds where the floors are wrong: the fastest reply of a kind may only ever have been seen queued.
- **Latency against the floor** (within a load level): a window whose median is more than QUEUED times the
  floor is cut; one within NEAR of it, with demand, may grow.

It starts at `start` (two prompts: one or two in flight is what a one-slot server should get) and doubles per
window (slow start; by eight where latency did not move with the load at all) while the comparisons say each
step bought throughput: the first window holds the first two bursts, sent at 1, 2 and then 2, 2 in flight,
so a one-slot server is found before the first doubling (the floors, learned from queued replies, would not
find it). Slow start grows only once the endpoint has been seen serving prompts side by side (`parallel`):
one slot answers first come, first served, so a later prompt answered first proves more than one, and so do
room found against replies each sent alone and room in a window whose replies all took as long;
without such proof for UNPROVEN_MAX windows it sends one window at 1 to compare with. The first burst, sent
before the endpoint ever answered, may hold its warm-up: it varies the load within the first window, but the
windows after it are compared with the replies after it. Then it grows by an eighth (at least one prompt) per
window. A window is at least
`max(WINDOW_MIN, min(limit, WINDOW_CAP))` prompts and WINDOW_REPLIES replies answered over at least
WINDOW_FLOORS times the fastest reply since its first reply (so a pause of our own event loop, e.g. a round's
commit, cannot fill one). In slow start a step takes one latency, as TCP doubles every round trip: a window
then needs one reply, twice the limit's prompts while that is under WINDOW_MIN, and one floor since the last
decision. Growth needs demand: a window
that never had the limit's half in flight says nothing about more (RFC 7661's point), so a limit does not
drift up while the pipeline is idle and flood the server on the next burst.

Pure: the caller passes latencies and in-flight counts; no clock, no I/O.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

NEAR = 1.5  # a window whose median latency is within this factor of the floor has room: grow
QUEUED = 3.0  # beyond this factor the server is queueing our prompts: back off
WINDOW_CAP = 16  # prompts per decision at most, so a wide limit still adapts within a few latencies
WINDOW_MIN = 8  # and at least: two windows compared at a small limit are not one or two replies each
WINDOW_REPLIES = 4  # and after slow start at least this many replies (batches of 32 prompts make few)
WINDOW_FLOORS = 2.0  # a window lasts at least this many times the fastest reply seen
OVERLOAD_FACTOR = 0.5  # on a timeout or a 429
ADD = 8  # additive increase: a window's step is limit / ADD, at least 1
STEP = 1.25  # windows whose loads differ by this factor are compared (smaller steps drown in noise)
FULL = 0.5  # share of a load change that went into latency beyond which the server was already full
NO_QUEUE = 0.1  # at most this share, latency did not move with the load at all: slow start leaps, not doubles
LEAP = 8  # slow start's factor then: 2, 16, 128, one latency apart (by 4 it took one latency more)
UNIFORM = 1.1  # a window whose replies all took within this factor of each other: prompts served side by side
OVERTAKE = 0.05  # a reply sent this share of its latency after another, answered before it: served side by side
UNPROVEN_MAX = 4  # slow-start windows that would have grown without that proof, before one window at 1 in flight
HOLD_MAX = 32  # windows between probes upward at most, after probes that found no room
REF_AGE = 32  # windows after which a reference window is too old to compare with


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
        floor = self.alone(tokens)
        return seconds / floor if floor > 0 else 1.0

    def alone(self, tokens: int) -> float:
        """Seconds a reply of `tokens` completion tokens takes with nothing queued, by what was seen."""
        if tokens > 0 and self.rate != float("inf"):
            return max(self.seconds, self.rate * tokens)
        return self.seconds


Reply = tuple[float, int, int, str, int]  # latency, completion tokens, prompts, kind, prompts in flight at send
# What a comparison found: more load bought throughput; it changed the limit; neither.
ROOM, ACTED, COMPARED = "room", "acted", "compared"


@dataclass
class _Window:
    """The replies of one window and the load they were sent at."""

    replies: list[Reply]
    limit: float  # the limit when it closed (the load can be less: demand)
    age: int = 0  # windows closed since, while it is the reference

    @property
    def load(self) -> float:
        """Mean prompts in flight on the endpoint when its replies were sent, weighted by prompts."""
        return sum(r[2] * r[4] for r in self.replies) / max(1, sum(r[2] for r in self.replies))

    def split(self) -> tuple[_Window, _Window]:
        """Its replies sent at the lower loads and those sent at the higher ones (the first window holds
        the first burst, sent at 1, 2, 3... in flight; one after a raise, the old load and the new)."""
        ordered = sorted(self.replies, key=lambda r: r[4])
        half = len(ordered) // 2
        return _Window(ordered[:half], self.limit), _Window(ordered[half:], self.limit)

    def latencies(self, floors: dict[str, LatencyFloor], pooled: LatencyFloor | None = None,
                  ) -> dict[str, tuple[float, int]]:
        """Per kind (or all as one, against `pooled`): latency over what the same replies would take alone
        (1 unqueued, k with k-1 ahead on one slot), and prompts."""
        taken: dict[str, list[float]] = {}
        for seconds, tokens, prompts, kind, _ in self.replies:
            sums = taken.setdefault(kind if pooled is None else "", [0.0, 0.0, 0])
            sums[0] += prompts * seconds
            sums[1] += prompts * (pooled or floors[kind]).alone(tokens)
            sums[2] += prompts
        return {kind: (spent / alone, int(n)) for kind, (spent, alone, n) in taken.items() if alone > 0}

    def uniform(self) -> bool:
        """Whether its replies, sent at more than one load, all took about as long (within UNIFORM)."""
        seconds = [reply[0] for reply in self.replies]
        loads = {reply[4] for reply in self.replies}
        return len(loads) > 1 and min(seconds) > 0 and max(seconds) <= UNIFORM * min(seconds)


def latency_change(before: _Window, after: _Window, floors: dict[str, LatencyFloor],
                   pooled: LatencyFloor) -> float | None:
    """How many times slower `after`'s replies were than `before`'s: kind by kind (a window of short answers
    against one of long ones says little about the queue), or all against the `pooled` floor when no kind is
    in both; None when a window has no reply with a floor."""
    old, new = before.latencies(floors), after.latencies(floors)
    if not old.keys() & new.keys():
        old, new = before.latencies(floors, pooled), after.latencies(floors, pooled)
    weighted = [(min(old[kind][1], new[kind][1]), math.log(max(new[kind][0], 1e-9) / max(old[kind][0], 1e-9)))
                for kind in old.keys() & new.keys()]
    total = sum(weight for weight, _ in weighted)
    return math.exp(sum(weight * log for weight, log in weighted) / total) if total else None


@dataclass
class AimdLimit:
    """The number of prompts to keep in flight on one endpoint, between 1 and `ceiling`."""

    ceiling: int
    start: int = 2
    limit: float = 0.0
    slow_start: bool = True
    descending: bool = False  # halving while throughput holds, after a probe found the server full
    epoch: int = 0  # bumped by each decrease; a reply or overload from a prompt sent before it is of the old load
    decreases: int = 0
    settled_peak: int = 0  # most prompts in flight when a prompt sent after the first cut was sent (warm-up over)
    floor: LatencyFloor = field(default_factory=LatencyFloor)
    floors: dict[str, LatencyFloor] = field(default_factory=dict)  # per kind of request, for comparisons
    _replies: list[Reply] = field(default_factory=list)
    _cold: list[Reply] = field(default_factory=list)  # this window's replies sent before the endpoint first answered
    _first_answer: float | None = None  # when it did
    _latest_sent: float = float("-inf")  # when the latest-sent prompt answered so far was sent
    _unproven: int = 0  # slow-start windows that would have grown without proof of prompts served side by side
    _room_unqueued: bool = False  # the last comparison found room against replies each sent alone
    parallel: bool = False  # proof that the endpoint serves prompts side by side (see `_decide`)
    _ratios: list[float] = field(default_factory=list)
    _weight: int = 0
    _busy: bool = False
    _sent_under: int = 1  # the smaller of the limits before and after the last window's decision
    _opened: float | None = None  # when the current window opened (see `answered`)
    _decided: float | None = None  # when the last window closed
    _reference: _Window | None = None  # the last window at another load, to compare the next ones with
    _hold: int = 0  # windows to wait before the next probe upward
    _next_hold: int = 1
    _probing: bool = False  # the limit was raised since the last comparison or cut
    _room_queued: float = 1.0  # the share queued by the last comparison that found room
    _full_at: float = float("inf")  # the last load found full: a probe finding room above it resets the hold

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError("the concurrency ceiling is at least 1")
        self.limit = float(max(1, min(self.start, self.ceiling)))
        self._sent_under = self.allowed

    @property
    def allowed(self) -> int:
        """Prompts that may be in flight now."""
        return max(1, int(self.limit))

    def answered(self, seconds: float, tokens: int, prompts: int, in_flight: int, epoch: int, now: float,
                 kind: str = "") -> None:
        """A reply to `prompts` prompts (one request), `seconds` after it was sent in `epoch` with `in_flight`
        prompts outstanding on the endpoint (its own included); `tokens`: its longest completion; `now`: when
        it came (any monotonic clock); `kind`: what was asked (the stage), whose replies compare."""
        ratio = self.floor.ratio(seconds, tokens)
        self.floors.setdefault(kind, LatencyFloor()).ratio(seconds, tokens)
        if epoch > 0:
            self.settled_peak = max(self.settled_peak, in_flight)
        sent = now - seconds
        # One slot answers in the order it was sent (llama.cpp, Ollama and LM Studio queue first come, first served);
        # a later prompt answered first proves prompts run side by side. Sent in one burst, the order may not hold.
        self.parallel = self.parallel or sent + OVERTAKE * seconds < self._latest_sent
        self._latest_sent = max(self._latest_sent, sent)
        if epoch != self.epoch:
            return  # sent before the last cut: its latency holds the queue the cut was for
        if self._opened is None:
            # Slow start's window runs from the last decision (at first, from when this reply was sent): one
            # step per latency, as TCP's per round trip; counted from its first reply, a step took two. After it,
            # from its first reply, so the replies a pause of our own held back, arriving at once, cannot fill one.
            if self.slow_start:
                self._opened = self._decided if self._decided is not None else now - seconds
            else:
                self._opened = now
        self._ratios.append(ratio)
        reply = (seconds, tokens, prompts, kind, in_flight)
        self._replies.append(reply)
        if self._first_answer is None:
            self._first_answer = now
        if sent < self._first_answer:
            self._cold.append(reply)
        self._weight += prompts
        # Demand as it was when these prompts were sent: most of a window's replies were sent before the decision
        # that opened it, under the limit before it (in slow start nearly all of them, one window a latency).
        self._busy = self._busy or 2 * in_flight >= min(self.allowed, self._sent_under)
        # Slow start decides every latency, as TCP's doubles every round trip, on at least two bursts at the
        # start (sent at 1, 2 in flight, then 2 and 2: loads to compare).
        smallest = min(WINDOW_MIN, 2 * self.allowed) if self.slow_start else WINDOW_MIN
        enough = max(smallest, min(self.allowed, WINDOW_CAP))
        floors = 1.0 if self.slow_start else WINDOW_FLOORS
        replies = 1 if self.slow_start else WINDOW_REPLIES
        long_enough = now - self._opened >= floors * self.floor.seconds
        if self._weight >= enough and len(self._replies) >= replies and long_enough:
            self._decided = now
            self._close_window()

    def resume(self) -> None:
        """A new client takes the endpoint over: the window in progress, filled while the last one's requests
        wound down, is dropped; what was learned (limit, floors, reference, proof) stays."""
        self._clear()
        self._decided = None

    def overloaded(self, sent_in_epoch: int) -> None:
        """A timeout or a 429 for a prompt sent in `sent_in_epoch`; several from one burst halve once."""
        if sent_in_epoch == self.epoch:
            self._reference = None  # not undone by the comparison after it: the server said it was too much
            self.descending = False
            self._decrease(OVERLOAD_FACTOR)

    def _close_window(self) -> None:
        before = self.allowed
        self._decide()
        self._sent_under = min(before, self.allowed)

    def _decide(self) -> None:
        window = _Window(self._replies, self.limit)
        # The replies sent before the endpoint first answered may hold its warm-up (a model's first use): they
        # vary the load within the first window, but a later window is compared with the ones after them.
        warm = _Window([reply for reply in self._replies if reply not in self._cold], self.limit)
        median, busy = statistics.median(self._ratios), self._busy
        self._clear()
        reference = self._reference
        outcome, self._room_queued, self._room_unqueued = None, 1.0, False
        if reference is not None and reference.age < REF_AGE:
            outcome = self._compare(reference, window, median)
            reference.age += 1
        if outcome is not None or reference is None or reference.age >= REF_AGE:
            self._reference = warm if warm.replies else window
        if outcome is None and self.slow_start and len(window.replies) >= 2:
            outcome = self._compare(*window.split(), median)  # no other load to compare with: within it
        if outcome == ACTED:
            return
        if median > QUEUED:
            # The queue grows with the limit; cut by as much as the latency rose, at most in half.
            self._decrease(max(OVERLOAD_FACTOR, NEAR / median))
        elif busy and (outcome == ROOM if self.slow_start and outcome is not None else median <= NEAR):
            # Slow start doubles on evidence that more load bought throughput where there is any (the floors
            # of a server that queued from the first burst on are learned from queued replies and would not
            # say so), and leaps by LEAP when the latency did not move with the load at all. It grows only once
            # the endpoint has been seen serving prompts side by side: one slot can pass every comparison above
            # (a slow first reply, the model's warm-up, or a short answer queued behind a long one make replies
            # sent at 2 in flight look no slower than those sent at 1; real llama.cpp grows leapt to 8 and 16),
            # never that test. Proof: a later prompt answered first (`answered`), room against replies each sent
            # alone on the endpoint (nothing queued there), or room in a window whose replies all took as long.
            self.parallel = self.parallel or self._room_unqueued or (outcome == ROOM and window.uniform())
            # Requests of several prompts (the completions API's lists) are exempt: no one-slot server we know takes
            # them (the cpu backend sends one prompt per request), and a window of a few batches alone on the
            # endpoint holds too few loads to compare for proof (measured: 70% of C/L on the fake teacher).
            lists = any(prompts > 1 for _, _, prompts, _, _ in window.replies)
            if self.slow_start and not (self.parallel or lists) and self.limit < self.ceiling:
                self._unproven += 1
                if self._unproven >= UNPROVEN_MAX:  # no proof coming: one window at 1, to compare the next with
                    self._unproven = 0
                    self._set(1.0)
                    self.epoch += 1  # what was sent at 2 is not of that load
                return
            self._grow(window.load, LEAP if self._room_queued < NO_QUEUE else 2)

    def _compare(self, reference: _Window, window: _Window, median: float) -> str | None:
        """Compare `window` with `reference`, sent at another load: ACTED when that decided the limit, ROOM
        when the extra load bought throughput, COMPARED when neither, None when the loads are too close or no
        kind is in both."""
        change = window.load / reference.load
        latency = latency_change(reference, window, self.floors, self.floor) if not 1 / STEP < change < STEP else None
        if latency is None:
            return None
        probing, self._probing = self._probing, False
        # The share of the load change that went into latency (by Little's law, the rest into throughput):
        # 0 the server had room for all of it, 1 latency grew in proportion to the load.
        queued = math.log(latency) / math.log(change)
        if change > 1 and queued > FULL:
            # More prompts, no more throughput: the server was full at the reference's load already. Back to
            # it, then less while throughput holds; the next probe up waits longer each time.
            self._hold, self._next_hold = self._next_hold, min(HOLD_MAX, 2 * self._next_hold)
            self._full_at = reference.load
            self.descending = True
            self._decrease(min(1.0, reference.load / self.limit))
            return ACTED
        if change > 1:
            self._room_queued = queued
            # Against replies each alone on the endpoint (one prompt, or one request's list of them): no queue to
            # mislead, so more load that did not slow them down was served side by side.
            self._room_unqueued = all(in_flight <= prompts for _, _, prompts, _, in_flight in reference.replies)
            if probing and window.load > STEP * self._full_at:
                self._next_hold, self._full_at = 1, float("inf")  # more room than before: probe freely again
            return ROOM
        if queued > FULL and self.descending:
            self._decrease(OVERLOAD_FACTOR)  # less load, same throughput: still full, try less again
            self.descending = self.allowed > 1
            return ACTED
        if queued <= FULL and reference.limit > self.limit:
            # Less load, less throughput: a cut too far, or not for our queue at all (a client short of CPU,
            # another tenant). Back to where the throughput was: the reference's limit if throughput fell
            # with the load all the way, else the load at which its fall says the server fills
            # (throughput = min(load, knee) x a constant, through both windows).
            self.descending = False
            knee = window.load * latency / change if queued > FULL / 2 else reference.limit
            if median > QUEUED:  # and a latency the floor calls queued is the new normal, not cut again
                self.floor.seconds *= median
                self.floor.rate *= median
            self._set(min(reference.limit, max(knee, window.load)))
            return ACTED
        return COMPARED

    def _grow(self, load: float, factor: int = 2) -> None:
        if self._hold > 0 and not self.slow_start:
            self._hold -= 1
            return
        self._probing = self._probing or self.limit < self.ceiling
        # Slow start doubles the load that bought throughput: a batch of 32 prompts goes alone past a limit of
        # 4 (an idle endpoint takes any batch), so the next limit is 64, not 8.
        # After it, a step of an eighth (at least one prompt): a wide limit cut by a false alarm (a pause of
        # our own) is back within a few windows, and each quarter more is compared with the last.
        growth = max(factor * self.limit, factor * load) if self.slow_start else self.limit + max(1.0, self.limit / ADD)
        self._set(growth)

    def _decrease(self, factor: float) -> None:
        self._set(self.limit * factor)
        self._sent_under = min(self._sent_under, self.allowed)
        self.slow_start = False
        self.epoch += 1
        self.decreases += 1
        self._probing = False
        self._clear()

    def _clear(self) -> None:
        self._replies, self._cold, self._ratios, self._weight, self._busy, self._opened = [], [], [], 0, False, None

    def _set(self, limit: float) -> None:
        self.limit = min(float(self.ceiling), max(1.0, limit))
