"""The AIMD controller of adaptive.py, fed scripted replies: latencies are numbers, no clock, no server."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import pytest

from selfinstruct.teacher.adaptive import AimdLimit, LatencyFloor, _Window, latency_change

Job = tuple[str, float, int]


@dataclass
class Server:
    """A scripted server: `slots` prompts served at once, first come first served, each taking `service`
    seconds (or `services[i % len]` for the i-th prompt: answers of different lengths); `lag` seconds are
    added to every reply whatever the load (a client short of CPU)."""

    slots: int
    service: float = 1.0
    lag: float = 0.0
    services: tuple[float, ...] = ()
    tokens_per_second: float = 0.0  # completion tokens reported: service time is spent decoding them
    jobs: tuple[Job, ...] = ()  # (kind, service seconds, completion tokens), after `first`, in a cycle
    first: tuple[Job, ...] = ()

    def job(self, order: int) -> Job:
        if order < len(self.first):
            return self.first[order]
        if self.jobs:
            return self.jobs[(order - len(self.first)) % len(self.jobs)]
        service = self.services[order % len(self.services)] if self.services else self.service
        return "", service, round(service * self.tokens_per_second)


def drive(limit: AimdLimit, server: Server, replies: int, demand: int = 10_000,
          times: list[float] | None = None) -> list[int]:
    """Keep min(limit, demand) prompts in flight, as the client does, for `replies` replies; the limit
    after each (and into `times`, when each came). A discrete-event simulation: time is a number, nothing sleeps."""
    slots_free = [0.0] * server.slots  # when each slot is next free
    # (done, order, sent, in flight, epoch, tokens, kind)
    in_flight: list[tuple[float, int, float, int, int, int, str]] = []
    now, order, seen = 0.0, 0, []
    for _ in range(replies):
        while len(in_flight) < min(limit.allowed, demand):
            slot_free = heapq.heappop(slots_free)
            kind, service, tokens = server.job(order)
            done = max(now, slot_free) + service
            heapq.heappush(slots_free, done)
            heapq.heappush(in_flight, (done + server.lag, order, now, len(in_flight) + 1, limit.epoch, tokens, kind))
            order += 1
        done, _, sent, outstanding, epoch, tokens, kind = heapq.heappop(in_flight)
        now = done
        limit.answered(done - sent, tokens=tokens, prompts=1, in_flight=outstanding, epoch=epoch, now=now, kind=kind)
        seen.append(limit.allowed)
        if times is not None:
            times.append(now)
    return seen


# Answers of different lengths: service times cycle through these, with completion tokens in proportion.
MIXED = (1.0, 3.0, 0.5, 6.0, 2.0)
# A grow of the bundled SmolLM2-135M on one llama.cpp slot, as bench/single_slot_bench.py traced it: it opens
# with instruction replies, two of them running to max_tokens (1,024 tokens, ~15 s alone, the very first
# reply slower: the model's first use), then classify answers of 1-2 tokens (~0.2 s), instances of 20-200
# tokens (0.6-3.3 s) and more instructions. The controller before this test reached 22 in flight on it.
GROW_FIRST: tuple[Job, ...] = (("instructions", 7.0, 76), ("instructions", 15.0, 1024), ("instructions", 15.0, 1024),
                               ("instructions", 1.0, 38))
GROW: tuple[Job, ...] = ((("classify", 0.2, 2),) * 5 + (("instances", 0.6, 20), ("classify", 0.2, 1),
                         ("instances", 2.5, 150), ("instructions", 1.5, 60)) + (("classify", 0.25, 2),) * 3
                         + (("instances", 1.0, 50), ("instances", 3.3, 200)))


@pytest.mark.parametrize(
    ("server", "ceiling", "settles_between"),
    [
        (Server(1), 128, (1, 2)),  # llama.cpp's llama_cpp.server: one request at a time
        (Server(1), 4, (1, 2)),  # the cpu backend's default ceiling
        (Server(1, services=MIXED, tokens_per_second=20), 128, (1, 2)),
        (Server(1, first=GROW_FIRST, jobs=GROW), 128, (1, 2)),
        # A server with k slots is kept between k/2 and 3k: latency up to 3x its best is taken as room, and a
        # probe up that found no room is followed by a halving that looks for the knee from below.
        (Server(2), 128, (1, 6)),
        (Server(8), 128, (4, 24)),
        (Server(8, services=MIXED, tokens_per_second=20), 128, (4, 24)),
        (Server(8, first=GROW_FIRST, jobs=GROW), 128, (3, 24)),
        (Server(128), 128, (128, 128)),  # a wide server: the ceiling
        (Server(128, services=MIXED, tokens_per_second=20), 128, (128, 128)),
        (Server(128, first=GROW_FIRST, jobs=GROW), 128, (128, 128)),
        (Server(512), 128, (128, 128)),
    ],
)
def test_the_limit_settles_near_what_the_server_serves_at_once(server: Server, ceiling: int,
                                                               settles_between: tuple[int, int]) -> None:
    limit = AimdLimit(ceiling=ceiling)
    seen = drive(limit, server, replies=3000)
    low, high = settles_between
    assert all(low <= value <= high for value in seen[-500:]), sorted(set(seen[-500:]))


def test_it_starts_modestly_and_doubles_in_slow_start_on_a_wide_server() -> None:
    limit = AimdLimit(ceiling=128)
    assert limit.allowed == 2
    seen = drive(limit, Server(1000), replies=300)
    # Doubled or, where latency did not move with the load at all, multiplied by eight per window.
    steps = sorted(set(seen))
    assert steps[0] == 2 and steps[-1] == 128 and all(b in (2 * a, 8 * a) for a, b in zip(steps, steps[1:-1]))
    assert 128 in seen[:50] and limit.slow_start and limit.decreases == 0  # reached the ceiling without a cut


def test_slow_start_takes_one_step_per_latency() -> None:
    # Service 1 s, room for all: 2 in flight for two latencies (the bursts sent at 1, 2 and at 2, 2 in flight
    # are compared), then 16 and 128 one latency after the other (latency did not move with the load: by
    # eight). Counted from a window's first reply, as before, each step took two.
    times: list[float] = []
    seen = drive(AimdLimit(ceiling=128), Server(1000), replies=200, times=times)
    reached = {step: times[seen.index(step)] for step in (16, 128)}
    assert reached == {16: 2.0, 128: 3.0}


@pytest.mark.parametrize("server", [Server(1), Server(1, first=GROW_FIRST, jobs=GROW)])
def test_a_single_slot_never_gets_more_than_one_or_two(server: Server) -> None:
    # The first two bursts (sent at 1, 2 in flight, then 2 and 2) already show latency growing with the load,
    # so slow start does not grow; the floors, learned from queued replies, would have let it.
    seen = drive(AimdLimit(ceiling=128), server, replies=2000)
    assert max(seen) == 2
    assert set(seen[100:]) <= {1, 2}


@pytest.mark.parametrize("warm_up", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("tokens_per_second", [0, 20])
@pytest.mark.parametrize("jobs", [(), GROW])
def test_a_slow_first_reply_does_not_make_a_single_slot_look_wide(warm_up: float, tokens_per_second: float,
                                                                  jobs: tuple[Job, ...]) -> None:
    # The model's first use adds `warm_up` service times to the first reply. The replies sent at 1 and 2 in flight
    # then take 1 + w and 2 + w, those sent at 2 and 2 take 2 each: latency did not rise with the load. Before
    # growth needed proof of prompts served side by side, this leapt to 16 (a real llama.cpp grow did), and with
    # the stages' mix of long and short answers, a later window at 4 looked faster than one at 2 (8 in flight).
    server = Server(1, first=(("", 1.0 + warm_up, round((1.0 + warm_up) * tokens_per_second)),),
                    tokens_per_second=tokens_per_second, jobs=jobs)
    limit = AimdLimit(ceiling=128)
    seen = drive(limit, server, replies=2000)
    assert max(seen) <= 2 and not limit.parallel  # one slot answers first come, first served: never overtaken
    assert set(seen[100:]) <= {1, 2}


@pytest.mark.parametrize("first", [(("", 1.5, 0),), (("", 3.0, 0), ("", 3.0, 0))])
def test_a_wide_server_with_a_slow_first_burst_still_reaches_the_ceiling(first: tuple[Job, ...]) -> None:
    # Answers all of one length come back in the order they were sent, as on one slot, and the first window's are
    # uneven: no proof, so after UNPROVEN_MAX windows one window at 1 in flight, which nothing queues behind, is
    # the reference; latency at 2 against it did not move, and slow start goes on.
    times: list[float] = []
    limit = AimdLimit(ceiling=128)
    seen = drive(limit, Server(1000, first=first), replies=1000, times=times)
    assert limit.parallel and times[seen.index(128)] <= 30.0 and min(seen[seen.index(128):]) == 128


def test_a_later_prompt_answered_first_proves_prompts_are_served_side_by_side() -> None:
    limit = AimdLimit(ceiling=128)
    limit.answered(0.5, tokens=2, prompts=1, in_flight=2, epoch=0, now=10.5)  # sent at 10.0
    assert not limit.parallel
    limit.answered(3.0, tokens=200, prompts=1, in_flight=1, epoch=0, now=11.0)  # sent at 8.0, before it
    assert limit.parallel
    burst = AimdLimit(ceiling=128)  # sent in one burst, the order says nothing
    burst.answered(1.0, tokens=20, prompts=1, in_flight=2, epoch=0, now=11.0)
    burst.answered(1.01, tokens=20, prompts=1, in_flight=1, epoch=0, now=11.01)
    assert not burst.parallel


def test_a_probe_that_found_no_room_makes_the_next_one_wait_longer() -> None:
    seen = drive(AimdLimit(ceiling=128, start=4), Server(1), replies=3000)
    runs = [(value, len(list(group))) for value, group in itertools.groupby(seen)]
    # Replies spent at 1 between probes to 2, after the first descent (4, 2, then 1; the last run is cut short
    # by the end of the simulation): they grow, up to HOLD_MAX windows.
    waits = [length for value, length in runs[2:-1] if value == 1]
    assert len(waits) >= 5 and all(b >= a for a, b in zip(waits, waits[1:])) and waits[-1] >= 8 * waits[0]
    assert set(value for value, _ in runs[2:]) == {1, 2}


@pytest.mark.parametrize(("start", "ceiling", "allowed"), [(4, 128, 4), (4, 2, 2), (1, 128, 1), (0, 128, 1)])
def test_the_start_is_bounded_by_the_ceiling_and_one(start: int, ceiling: int, allowed: int) -> None:
    assert AimdLimit(ceiling=ceiling, start=start).allowed == allowed


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ([0], 32),  # one timeout or 429: halved
        ([0, 0, 0, 0], 32),  # a burst of them from prompts sent before the cut: halved once
        ([0, 1], 16),  # one more after the cut, from a prompt sent after it: halved again
        ([0, 1, 2, 3, 4, 5, 6, 7], 1),  # never below one
    ],
)
def test_overloads_cut_multiplicatively_once_per_epoch(signals: list[int], expected: int) -> None:
    limit = AimdLimit(ceiling=128, start=64)
    for epoch in signals:
        limit.overloaded(epoch)
    assert limit.allowed == expected
    assert not limit.slow_start


def test_growth_needs_demand_so_an_idle_pipeline_does_not_raise_the_limit() -> None:
    limit = AimdLimit(ceiling=128, start=4)
    seen = drive(limit, Server(1000), replies=500, demand=1)  # one prompt at a time: nothing learned about more
    assert set(seen) == {4}


def test_a_latency_cut_that_does_not_lower_latency_is_undone() -> None:
    # A client whose replies all come 5 s late (its own event loop is slow): cutting the load cannot help.
    limit = AimdLimit(ceiling=128, start=64)
    drive(limit, Server(1000, service=1.0), replies=200)
    before = limit.allowed
    seen = drive(limit, Server(1000, service=1.0, lag=5.0), replies=1000)
    assert min(seen) < before  # it tried once
    assert seen[-1] >= before  # and took the slower replies as the new normal


def test_after_the_first_congestion_it_grows_by_one_per_window() -> None:
    limit = AimdLimit(ceiling=128, start=8)
    limit.overloaded(0)  # out of slow start at 4
    seen = drive(limit, Server(1000), replies=40)
    steps = sorted(set(seen))
    assert steps[0] == 4 and all(b - a == 1 for a, b in zip(steps, steps[1:]))


def test_replies_sent_before_a_cut_do_not_count_for_the_windows_after_it() -> None:
    limit = AimdLimit(ceiling=128, start=16)
    limit.overloaded(0)
    for _ in range(100):  # late replies of the old epoch, slow because of the queue the cut was for
        limit.answered(50.0, 0, 1, in_flight=8, epoch=0, now=0.0)
    assert limit.allowed == 8 and limit.decreases == 1


@pytest.mark.parametrize(
    ("replies", "probe", "ratio"),
    [
        ([(1.0, 10)], (1.0, 10), 1.0),
        ([(1.0, 10)], (2.0, 10), 2.0),  # same length, twice as slow: queued
        ([(1.0, 10), (10.0, 100)], (10.0, 100), 1.0),  # a long answer is not a queued one
        ([(1.0, 10), (10.0, 100)], (5.0, 50), 1.0),
        ([(1.0, 10), (10.0, 100)], (4.0, 10), 4.0),
        ([(0.5, 40), (0.5, 200)], (0.5, 120), 1.0),  # a fixed-latency server: length says nothing
        ([(2.0, 0)], (4.0, 0), 2.0),  # no token counts: seconds alone
    ],
)
def test_the_latency_floor_is_an_envelope_under_every_reply_seen(replies: list[tuple[float, int]],
                                                                 probe: tuple[float, int], ratio: float) -> None:
    floor = LatencyFloor()
    for seconds, tokens in replies:
        assert floor.ratio(seconds, tokens) >= 1.0
    assert floor.ratio(*probe) == pytest.approx(ratio)


def _window(*replies: tuple[float, int, str], load: int) -> _Window:
    return _Window([(seconds, tokens, 1, kind, load) for seconds, tokens, kind in replies], limit=load)


def test_windows_are_compared_kind_by_kind() -> None:
    floors = {"classify": LatencyFloor(0.2, float("inf")), "instances": LatencyFloor(1.0, 0.02)}
    pooled = LatencyFloor(0.2, 0.02)
    short = _window((0.2, 2, "classify"), (0.4, 2, "classify"), (2.0, 100, "instances"), load=1)
    queued = _window((0.6, 2, "classify"), (0.6, 2, "classify"), (4.0, 100, "instances"), load=2)
    # classify 0.3 -> 0.6 s (2x) on 2 replies, instances 2 -> 4 s (2x) on 1: twice as slow, whatever the mix
    assert latency_change(short, queued, floors, pooled) == pytest.approx(2.0)
    # Only long answers after only short ones: no kind in both, so all against the pooled floor.
    long_only = _window((4.0, 100, "instances"), load=2)
    short_only = _window((0.2, 2, "classify"), load=1)
    assert latency_change(short_only, long_only, floors, pooled) == pytest.approx(2.0)


def test_batches_of_prompts_grow_in_slow_start_without_waiting_for_proof() -> None:
    # On the completions API each request holds up to 32 prompts and an idle endpoint takes any batch, so the
    # first windows are one batch each, alone, all of one load: no comparison can prove side-by-side service.
    # Gated like single prompts, they sat at one batch at a time for 12 s (70% of C/L on the fake teacher).
    limit, now = AimdLimit(ceiling=128), 0.0
    for _ in range(3):
        now += 0.5
        limit.answered(0.5, tokens=40, prompts=32, in_flight=32, epoch=limit.epoch, now=now, kind="instructions")
    assert limit.allowed == 128 and not limit.parallel
