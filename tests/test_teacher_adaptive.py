"""The AIMD controller of adaptive.py, fed scripted replies: latencies are numbers, no clock, no server."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import pytest

from selfinstruct.teacher.adaptive import AimdLimit, LatencyFloor


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


def drive(limit: AimdLimit, server: Server, replies: int, demand: int = 10_000) -> list[int]:
    """Keep min(limit, demand) prompts in flight, as the client does, for `replies` replies; the limit
    after each. A discrete-event simulation: time is a number, nothing sleeps."""
    slots_free = [0.0] * server.slots  # when each slot is next free
    in_flight: list[tuple[float, int, float, int, int, int]] = []  # (done, order, sent, in flight, epoch, tokens)
    now, order, seen = 0.0, 0, []
    for _ in range(replies):
        while len(in_flight) < min(limit.allowed, demand):
            slot_free = heapq.heappop(slots_free)
            service = server.services[order % len(server.services)] if server.services else server.service
            done = max(now, slot_free) + service
            heapq.heappush(slots_free, done)
            tokens = round(service * server.tokens_per_second)
            heapq.heappush(in_flight, (done + server.lag, order, now, len(in_flight) + 1, limit.epoch, tokens))
            order += 1
        done, _, sent, outstanding, epoch, tokens = heapq.heappop(in_flight)
        now = done
        limit.answered(done - sent, tokens=tokens, prompts=1, in_flight=outstanding, epoch=epoch, now=now)
        seen.append(limit.allowed)
    return seen


# Answers of different lengths: service times cycle through these, with completion tokens in proportion.
MIXED = (1.0, 3.0, 0.5, 6.0, 2.0)


@pytest.mark.parametrize(
    ("server", "ceiling", "settles_between"),
    [
        (Server(1), 128, (1, 2)),  # llama.cpp's llama_cpp.server: one request at a time
        (Server(1), 4, (1, 2)),  # the cpu backend's default ceiling
        (Server(1, services=MIXED, tokens_per_second=20), 128, (1, 2)),
        # A server with k slots is kept between k and 3k: latency up to 3x its best is taken as room.
        (Server(2), 128, (2, 6)),
        (Server(8), 128, (8, 24)),
        (Server(8, services=MIXED, tokens_per_second=20), 128, (8, 24)),
        (Server(128), 128, (128, 128)),  # a wide server: the ceiling
        (Server(128, services=MIXED, tokens_per_second=20), 128, (128, 128)),
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
    limit = AimdLimit(ceiling=128, start=4)
    assert limit.allowed == 4
    seen = drive(limit, Server(1000), replies=300)
    assert seen[3] == 7  # one more per good reply sent with at least half the limit in flight (3 of the 4)
    assert 128 in seen[:200] and limit.slow_start  # reached the ceiling without a cut


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
    seen = drive(limit, Server(1000, service=1.0, lag=5.0), replies=400)
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
