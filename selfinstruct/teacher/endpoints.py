"""Several endpoints of one model: send to the least busy, set aside one that keeps failing.

An endpoint whose last `failures_to_set_aside` attempts all failed (server errors, timeouts, dropped
connections, unusable bodies; not 429, which is about our rate) is set aside for a cool-down that
doubles each time it happens again (capped), then tried again. With every endpoint set aside, a
request waits for the soonest to come back. Eight in a row: a flaky endpoint failing a quarter of its
attempts does that once in 65,000 attempts, a dead one within a moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .retry import ENDPOINT_FAULTS

C = TypeVar("C")


@dataclass
class Endpoint(Generic[C]):
    """One base URL and its clients (several, each with a small connection pool: see openai_compat)."""

    base_url: str
    clients: Sequence[C]
    outstanding: int = 0
    failures: int = 0
    cooldowns: int = 0
    set_aside_until: float = 0.0
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


@dataclass
class EndpointPool(Generic[C]):
    endpoints: list[Endpoint[C]]
    failures_to_set_aside: int = 8
    base_cooldown: float = 1.0
    max_cooldown: float = 60.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def choose(self) -> Endpoint[C] | None:
        """The endpoint in service with the fewest requests outstanding, or None when all are set aside."""
        now = self.clock()
        ready = [endpoint for endpoint in self.endpoints if endpoint.set_aside_until <= now]
        return min(ready, key=lambda endpoint: endpoint.outstanding) if ready else None

    def soonest(self) -> float:
        """Seconds until the first set-aside endpoint comes back."""
        return max(0.0, min(endpoint.set_aside_until for endpoint in self.endpoints) - self.clock())

    async def acquire(self) -> Endpoint[C]:
        while (endpoint := self.choose()) is None:
            await self.sleep(self.soonest())
        endpoint.outstanding += 1
        endpoint.sent += 1
        return endpoint

    def release(self, endpoint: Endpoint[C], error_class: str | None) -> None:
        """Count the attempt's outcome: None for success, else its error class (others count nothing)."""
        endpoint.outstanding -= 1
        if error_class is None:
            endpoint.failures = endpoint.cooldowns = 0
        elif error_class in ENDPOINT_FAULTS and endpoint.set_aside_until <= self.clock():
            # Attempts sent before it was set aside fail late; they must not double its cool-down.
            endpoint.failures += 1
            if endpoint.failures >= self.failures_to_set_aside:
                self._set_aside(endpoint)

    def _set_aside(self, endpoint: Endpoint[C]) -> None:
        cooldown = min(self.max_cooldown, self.base_cooldown * 2 ** endpoint.cooldowns)
        endpoint.set_aside_until = self.clock() + cooldown
        endpoint.cooldowns += 1
        endpoint.failures = 0
