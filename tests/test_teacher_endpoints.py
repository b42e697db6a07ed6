"""Several endpoints: the least busy gets the request; one that keeps failing is set aside, then tried again."""

from __future__ import annotations

import asyncio

import pytest

from selfinstruct.core.teacher_records import TeacherRequest
from selfinstruct.teacher.endpoints import Endpoint, EndpointPool
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.retry import CONNECTION, RATE_LIMITED, SERVER_ERROR, TIMEOUT
from selfinstruct.teacher.server import free_port
from selfinstruct.core.config import SELF_INSTRUCT_CLASSIFY
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _pool(*urls: str, clock: FakeClock) -> EndpointPool[str]:
    return EndpointPool([Endpoint(url, ["client"]) for url in urls], failures_to_set_aside=3,
                        base_cooldown=1.0, max_cooldown=4.0, clock=clock, sleep=clock.sleep)


def test_the_endpoint_with_fewest_outstanding_is_chosen() -> None:
    pool = _pool("a", "b", clock=FakeClock())
    first, second, third = (asyncio.run(pool.acquire()) for _ in range(3))
    assert [first.base_url, second.base_url, third.base_url] == ["a", "b", "a"]
    pool.release(first, None)
    pool.release(third, None)
    assert asyncio.run(pool.acquire()).base_url == "a"


def test_failures_in_a_row_set_an_endpoint_aside_with_a_doubling_cool_down() -> None:
    clock = FakeClock()
    pool = _pool("a", "b", clock=clock)
    a = pool.endpoints[0]
    for error in (SERVER_ERROR, TIMEOUT, CONNECTION):
        a.outstanding += 1
        pool.release(a, error)
    assert a.set_aside_until == 1.0
    assert pool.choose() is pool.endpoints[1]
    clock.now = 1.0
    for _ in range(3):
        a.outstanding += 1
        pool.release(a, CONNECTION)
    assert a.set_aside_until == 1.0 + 2.0  # the second cool-down is twice the first
    clock.now = 3.0
    a.outstanding += 1
    pool.release(a, None)  # one success forgives it
    assert a.failures == 0 and a.cooldowns == 0


def test_rate_limits_and_a_success_between_failures_do_not_set_an_endpoint_aside() -> None:
    pool = _pool("a", clock=FakeClock())
    a = pool.endpoints[0]
    for error in (SERVER_ERROR, SERVER_ERROR, None, SERVER_ERROR, RATE_LIMITED, RATE_LIMITED, RATE_LIMITED):
        a.outstanding += 1
        pool.release(a, error)
    assert a.set_aside_until == 0.0


def test_failures_of_attempts_sent_before_the_cool_down_do_not_lengthen_it() -> None:
    clock = FakeClock()
    pool = _pool("a", clock=clock)
    a = pool.endpoints[0]
    for _ in range(10):
        a.outstanding += 1
        pool.release(a, CONNECTION)
    assert a.set_aside_until == 1.0 and a.cooldowns == 1


def test_with_every_endpoint_set_aside_a_request_waits_for_the_soonest() -> None:
    clock = FakeClock()
    pool = _pool("a", "b", clock=clock)
    pool.endpoints[0].set_aside_until = 5.0
    pool.endpoints[1].set_aside_until = 2.0
    chosen = asyncio.run(pool.acquire())
    assert chosen.base_url == "b" and clock.now == 2.0


def test_a_dead_endpoint_is_set_aside_and_the_live_one_answers_everything() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: connections are refused

    async def send_all(teacher: OpenAITeacher) -> list[str]:
        requests = [TeacherRequest(stage="classify", prompt=f"Is {n} even?", decoding=SELF_INSTRUCT_CLASSIFY)
                    for n in range(60)]
        try:
            return [reply.text for reply in await asyncio.gather(*(teacher.complete(r) for r in requests))]
        finally:
            await teacher.close()

    with FakeTeacher(FakeTeacherConfig(seed=2)) as live:
        teacher = OpenAITeacher(base_urls=[dead, live.base_url], model="m", concurrency=4, max_attempts=5,
                                timeout=5.0)
        replies = asyncio.run(send_all(teacher))
        assert len(replies) == 60 and live.stats()["requests"] == 60
    dead_endpoint, live_endpoint = teacher.pool.endpoints
    assert dead_endpoint.cooldowns >= 1  # it was set aside
    assert dead_endpoint.sent < 30 and live_endpoint.sent >= 60


# --- outages: probing instead of spending attempts ----------------------------------------------------------


class ScriptedProbe:
    """Answers GET /models as scripted: fails while `down` is set, and counts its calls."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    async def __call__(self, endpoint: Endpoint) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError(111, "Connect call failed")


async def _yield(seconds: float) -> None:
    await asyncio.sleep(0.001)  # the test moves the clock; the prober only lets others run


def _probed_pool(clock: FakeClock, probe: ScriptedProbe, budget: float = 30.0) -> EndpointPool[str]:
    return EndpointPool([Endpoint("http://a/v1", ["client"])], probe=probe, probe_every=2.0, outage_budget=budget,
                        clock=clock, sleep=_yield)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


def test_a_refused_connection_sets_the_endpoint_aside_until_a_probe_answers(caplog) -> None:
    clock, probe = FakeClock(), ScriptedProbe()

    async def scenario() -> tuple[str, float]:
        pool = _probed_pool(clock, probe)
        a = await pool.acquire()
        pool.release(a, CONNECTION, unreachable="connection refused")  # one refusal is enough
        assert pool.choose() is None
        waiting = asyncio.ensure_future(pool.acquire())
        clock.now = 2.0  # the cool-down is over: the first probe fails
        await _settle()
        assert not waiting.done()
        clock.now = 10.0
        probe.down = False  # the server is back
        chosen = await waiting
        await pool.close()
        return chosen.base_url, clock.now

    with caplog.at_level("WARNING"):
        url, _ = asyncio.run(scenario())
    assert url == "http://a/v1" and probe.calls >= 2
    messages = [record.getMessage() for record in caplog.records]
    assert sum("teacher down since" in m for m in messages) == 1  # once, not per request
    assert any("waiting up to 30 s" in m and "connection refused" in m for m in messages)
    assert any(m.startswith("teacher back after") for m in messages)


def test_a_teacher_down_longer_than_the_budget_raises_for_every_waiting_request() -> None:
    from selfinstruct.core.errors import TeacherUnavailable

    clock, probe = FakeClock(), ScriptedProbe()

    async def scenario() -> list[BaseException | Endpoint]:
        pool = _probed_pool(clock, probe, budget=30.0)
        a = await pool.acquire()
        pool.release(a, CONNECTION, unreachable="connection refused")
        waiting = [asyncio.ensure_future(pool.acquire()) for _ in range(3)]
        clock.now = 2.0  # the first probe fails: down since now
        await _settle()
        clock.now = 40.0  # and it still fails
        await _settle()
        pool.wake()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        await pool.close()
        return results

    results = asyncio.run(scenario())
    assert all(isinstance(result, TeacherUnavailable) for result in results)
    assert "longer than the retry budget of 30 s" in str(results[0]) and "connection refused" in str(results[0])


def test_an_endpoint_cooling_off_after_errors_it_answered_is_not_down() -> None:
    clock, probe = FakeClock(), ScriptedProbe()
    probe.down = False  # GET /models answers: the server is up, only its completions fail

    async def scenario() -> bool:
        pool = _probed_pool(clock, probe, budget=1.0)
        for _ in range(8):
            a = await pool.acquire()
            pool.release(a, SERVER_ERROR)
        clock.now = 100.0  # far past the outage budget: still no TeacherUnavailable
        chosen = await pool.acquire()
        await pool.close()
        return chosen is pool.endpoints[0]

    assert asyncio.run(scenario())


@pytest.mark.parametrize(("limit", "outstanding", "prompts", "room"),
                         [(4, 0, 32, True), (4, 3, 1, True), (4, 4, 1, False), (4, 2, 3, False), (None, 500, 32, True)])
def test_room_on_an_endpoint_follows_its_adaptive_limit(limit: int | None, outstanding: int, prompts: int,
                                                        room: bool) -> None:
    from selfinstruct.teacher.adaptive import AimdLimit

    endpoint = Endpoint("a", ["client"], limit=AimdLimit(ceiling=128, start=limit) if limit else None)
    endpoint.outstanding = outstanding
    assert endpoint.room_for(prompts) is room  # an idle endpoint takes any batch


def test_requests_waiting_for_room_get_it_in_the_order_they_came() -> None:
    # One slot (llama.cpp) serves what it is sent in order and its prompt cache reuses the last prompt's start,
    # so the order matters. A newcomer used to take the room a release had woken the oldest waiter for, and the
    # woken one went back to the end of the line: the prompts reached the server shuffled across stages.
    from selfinstruct.teacher.adaptive import AimdLimit

    async def scenario() -> list[str]:
        pool = EndpointPool([Endpoint("a", ["client"], limit=AimdLimit(ceiling=1, start=1))])
        order: list[str] = []

        async def ask(name: str) -> None:
            endpoint = await pool.acquire()
            order.append(name)
            await asyncio.sleep(0)
            pool.release(endpoint, None)

        first = await pool.acquire()
        waiting = [asyncio.ensure_future(ask(name)) for name in "bcd"]
        await asyncio.sleep(0)  # b, c and d are in line
        pool.release(first, None)  # room for b ...
        late = asyncio.ensure_future(ask("e"))  # ... which e, arriving before b runs, must not take
        await asyncio.gather(*waiting, late)
        return order

    assert asyncio.run(scenario()) == ["b", "c", "d", "e"]


def test_a_batch_too_large_for_the_room_left_lets_smaller_requests_pass() -> None:
    from selfinstruct.teacher.adaptive import AimdLimit

    async def scenario() -> tuple[bool, bool]:
        pool = EndpointPool([Endpoint("a", ["client"], limit=AimdLimit(ceiling=4, start=4))])
        held = [await pool.acquire() for _ in range(3)]  # 3 of 4 in flight
        batch = asyncio.ensure_future(pool.acquire(3))  # does not fit until two more come back
        single = asyncio.ensure_future(pool.acquire(1))
        await asyncio.sleep(0)
        passed = single.done() and not batch.done()
        pool.release(held[0], None)
        pool.release(held[1], None)
        pool.release(held[2], None)  # 1 in flight (the single): room for 3
        granted = await asyncio.wait_for(batch, 1.0)
        return passed, granted.outstanding == 4

    assert asyncio.run(scenario()) == (True, True)
