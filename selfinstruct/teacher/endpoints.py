"""Several endpoints of one model: send to the least loaded one with room, set aside one that is failing or
down, and wait out an outage by probing instead of spending the requests' attempts.

Room: each endpoint has an adaptive limit of prompts in flight (adaptive.py; None: only the client's
`--concurrency` bounds it). An endpoint with nothing outstanding takes any request, so a batch larger than
a small limit still goes. Requests that find no room wait in line and get it in the order they came (a
batch too large for the room left lets smaller ones behind it pass): a newcomer never takes room a waiting
request was woken for, so a one-slot server gets the prompts in the order the pipeline asked them, stage by
stage, and its prompt cache reuses what the last prompt of the same stage left.

Setting aside: an endpoint whose last `failures_to_set_aside` attempts all failed (server errors,
timeouts, dropped connections, unusable bodies; not 429, which is about our rate), or that refused a
connection once, is set aside for a cool-down that doubles each time it happens again (capped). With a
`probe` (GET /models), it comes back only once the cool-down is over and a probe answers, so requests do
not fail against a server that is restarting. With every endpoint set aside the teacher is down: requests
wait (one log line says so), and once it has been down for `outage_budget` seconds every waiting request
raises TeacherUnavailable. Eight failures in a row: a flaky endpoint failing a quarter of its attempts
does that once in 65,000 attempts, a dead one within a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..core.errors import TeacherUnavailable
from .adaptive import AimdLimit
from .retry import ENDPOINT_FAULTS, unreachable_cause

C = TypeVar("C")
log = logging.getLogger(__name__)


@dataclass
class Endpoint(Generic[C]):
    """One base URL and its clients (several, each with a small connection pool: see openai_compat)."""

    base_url: str
    clients: Sequence[C]
    limit: AimdLimit | None = None
    outstanding: int = 0  # prompts sent and not yet answered
    max_outstanding: int = 0
    failures: int = 0
    cooldowns: int = 0
    set_aside_until: float = 0.0
    awaiting_probe: bool = False
    unanswered: bool = False  # its last probe got no answer: down, not merely cooling off after errors
    last_error: str = ""
    sent: int = 0
    _client_load: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._client_load = [0] * len(self.clients)

    def take_client(self) -> int:
        index = min(range(len(self.clients)), key=self._client_load.__getitem__)
        self._client_load[index] += 1
        return index

    def give_client(self, index: int) -> None:
        self._client_load[index] -= 1

    def room_for(self, prompts: int) -> bool:
        return self.limit is None or self.outstanding == 0 or self.outstanding + prompts <= self.limit.allowed

    def load(self) -> float:
        return self.outstanding / self.limit.allowed if self.limit is not None else self.outstanding


Probe = Callable[[Endpoint], Awaitable[None]]  # returns when the endpoint answers, raises when it does not


@dataclass(eq=False)
class _Waiter(Generic[C]):
    """A request in line for room: `granted` is the endpoint taken for it; `signal` resolves when that happened
    or when it should look at the outage again."""

    prompts: int
    signal: asyncio.Future[None]
    granted: Endpoint[C] | None = None

    def notify(self) -> None:
        if not self.signal.done():
            self.signal.set_result(None)


@dataclass
class EndpointPool(Generic[C]):
    endpoints: list[Endpoint[C]]
    failures_to_set_aside: int = 8
    base_cooldown: float = 1.0
    max_cooldown: float = 60.0
    probe: Probe | None = None
    describe: Callable[[BaseException], str] | None = None  # a failed probe's cause, for the log
    probe_every: float = 2.0
    outage_budget: float = 600.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _waiters: deque[_Waiter[C]] = field(default_factory=deque)
    _down_since: float | None = None
    _prober: asyncio.Task[None] | None = None

    def choose(self, prompts: int = 1) -> Endpoint[C] | None:
        """The least loaded endpoint in service with room for `prompts`, or None."""
        now = self.clock()
        ready = [endpoint for endpoint in self.endpoints
                 if endpoint.set_aside_until <= now and not endpoint.awaiting_probe and endpoint.room_for(prompts)]
        return min(ready, key=Endpoint.load) if ready else None

    def in_service(self) -> list[Endpoint[C]]:
        now = self.clock()
        return [e for e in self.endpoints if e.set_aside_until <= now and not e.awaiting_probe]

    def soonest(self) -> float:
        """Seconds until the first set-aside endpoint's cool-down ends (0 for one waiting for a probe)."""
        return max(0.0, min(endpoint.set_aside_until for endpoint in self.endpoints) - self.clock())

    async def acquire(self, prompts: int = 1) -> Endpoint[C]:
        """An endpoint with room for `prompts`, taken for them (give it back with `release`)."""
        if not self._waiters and (endpoint := self.choose(prompts)) is not None:
            return self._take(endpoint, prompts)
        waiter: _Waiter[C] = _Waiter(prompts, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            while True:
                self.wake()  # grants the oldest waiters that fit, this one perhaps
                if waiter.granted is not None:
                    return waiter.granted
                self._note_outage(raise_past_budget=True)
                await self._wait(waiter)
        except BaseException:
            if waiter.granted is not None:  # cancelled just after it was given room: give it back
                self._untake(waiter.granted, prompts)
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _take(self, endpoint: Endpoint[C], prompts: int) -> Endpoint[C]:
        endpoint.outstanding += prompts
        endpoint.max_outstanding = max(endpoint.max_outstanding, endpoint.outstanding)
        endpoint.sent += 1
        return endpoint

    def _untake(self, endpoint: Endpoint[C], prompts: int) -> None:
        endpoint.outstanding -= prompts
        endpoint.sent -= 1
        self.wake()

    def release(self, endpoint: Endpoint[C], error_class: str | None, prompts: int = 1,
                unreachable: str | None = None) -> None:
        """Count the attempt's outcome: None for success, else its error class; `unreachable` names why no
        connection could be made (refused, not resolved, TLS), which sets the endpoint aside at once."""
        endpoint.outstanding -= prompts
        if error_class is None:
            endpoint.failures = endpoint.cooldowns = 0
        elif error_class in ENDPOINT_FAULTS and endpoint.set_aside_until <= self.clock() \
                and not endpoint.awaiting_probe:
            # Attempts sent before it was set aside fail late; they must not double its cool-down.
            endpoint.failures += 1
            endpoint.last_error = unreachable or error_class
            if unreachable or endpoint.failures >= self.failures_to_set_aside:
                self.set_aside(endpoint)
        self.wake()

    def set_aside(self, endpoint: Endpoint[C]) -> None:
        cooldown = min(self.max_cooldown, self.base_cooldown * 2 ** endpoint.cooldowns)
        endpoint.set_aside_until = self.clock() + cooldown
        endpoint.cooldowns += 1
        endpoint.failures = 0
        if self.probe is not None:
            endpoint.awaiting_probe = True
            if self._prober is None or self._prober.done():
                self._prober = asyncio.ensure_future(self._probe_until_back())
        self._note_outage()

    def wake(self) -> None:
        """Give the room there is to the waiting requests, oldest first; with every endpoint out of service,
        have each look at the outage (past its budget it raises)."""
        passed: list[_Waiter[C]] = []
        while self._waiters:
            waiter = self._waiters[0]
            endpoint = self.choose(waiter.prompts)
            if endpoint is None:
                if not any(other.room_for(1) for other in self.in_service()):
                    break
                passed.append(self._waiters.popleft())  # too large for the room left: the next may fit
                continue
            self._waiters.popleft()
            waiter.granted = self._take(endpoint, waiter.prompts)
            waiter.notify()
        self._waiters.extendleft(reversed(passed))
        if self._waiters and not self.in_service():
            for waiter in self._waiters:
                waiter.notify()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober

    async def _wait(self, waiter: _Waiter[C]) -> None:
        """Until `waiter` is given room or told to look at the outage, or the soonest cool-down ends; it keeps
        its place in line."""
        if not self.in_service() and self.probe is None:
            await self.sleep(self.soonest())
            return
        if waiter.signal.done():
            waiter.signal = asyncio.get_running_loop().create_future()
        timeout = self.soonest() if not self.in_service() and self.soonest() > 0 else self.probe_every
        await asyncio.wait({waiter.signal}, timeout=timeout)

    async def _probe_until_back(self) -> None:
        while waiting := [endpoint for endpoint in self.endpoints if endpoint.awaiting_probe]:
            now = self.clock()
            due = [endpoint for endpoint in waiting if endpoint.set_aside_until <= now]
            for endpoint in due:
                await self._probe_one(endpoint)
            self._note_outage()
            self.wake()
            if any(endpoint.awaiting_probe for endpoint in self.endpoints):
                # The next probe: at the soonest cool-down's end, at most probe_every after this one.
                await self.sleep(min(self.probe_every, max(0.01, self.soonest())) if not due else self.probe_every)

    async def _probe_one(self, endpoint: Endpoint[C]) -> None:
        assert self.probe is not None
        try:
            await self.probe(endpoint)
        except Exception as err:  # noqa: BLE001 - any failure to answer means: still down
            endpoint.unanswered = True
            endpoint.last_error = self.describe(err) if self.describe else unreachable_cause(err) or type(err).__name__
            return
        endpoint.awaiting_probe = endpoint.unanswered = False
        endpoint.set_aside_until = 0.0

    def _note_outage(self, raise_past_budget: bool = False) -> None:
        """Log once when every endpoint is down (out of service and its last probe unanswered) and once when
        one is back; raise past the outage budget. Endpoints cooling off after errors they answered are not
        down: their requests spend their own retry budgets."""
        down = not self.in_service() and all(endpoint.unanswered for endpoint in self.endpoints)
        now = self.clock()
        if down and self._down_since is None:
            self._down_since = now
            since = time.strftime("%H:%M:%S", time.localtime(time.time()))
            urls = ", ".join(endpoint.base_url for endpoint in self.endpoints)
            log.warning("teacher down since %s, waiting up to %s (%s: %s; probing every %g s)", since,
                        _duration(self.outage_budget), urls, self.endpoints[0].last_error or "failing",
                        self.probe_every)
        elif self.in_service() and self._down_since is not None:
            log.warning("teacher back after %.0f s", now - self._down_since)
            self._down_since = None
        elif raise_past_budget and down and self._down_since is not None and now - self._down_since > self.outage_budget:
            urls = ", ".join(f"{endpoint.base_url} ({endpoint.last_error})" for endpoint in self.endpoints)
            raise TeacherUnavailable(f"the teacher has been down for {_duration(now - self._down_since)}, longer "
                                     f"than the retry budget of {_duration(self.outage_budget)}: {urls}")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:.0f} s"
