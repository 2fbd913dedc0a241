"""Per-host politeness shared by every worker process and machine, through Redis.

Celery's rate limits are per task type, not per host, and each worker process only sees its
own requests; a host that serves 300 of our feeds (one agency, one CMS provider) would get as
many parallel requests as there are worker processes. Every request (feed or article page,
and every redirect hop) therefore takes a slot from ``ACQUIRE_HOST_SLOT``: at most
``max_in_flight`` requests in flight per host and ``min_gap`` seconds between request starts.

Waiting for a host's turn is free: the waiters of one host line up in this process
(``HostQueues``), and only the first ``max_in_flight`` of them ask Redis for a slot, so
hundreds of hosts can be waited on at once without holding anything another host could use
(the fetch process's cap on requests in flight is taken only once a slot is granted,
``pipeline.fetch``).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis
from yarl import URL

from pipeline.keys import ACQUIRE_HOST_SLOT, Keys


@dataclass(frozen=True)
class HostLimits:
    max_in_flight: int = 2
    min_gap_seconds: float = 1.0
    # A slot is a lease so that a worker killed mid-request cannot hold it forever; it must
    # outlast the longest request (connect + read timeouts).
    lease_seconds: float = 60.0


class NoSlot(Exception):
    """No slot before the deadline; ``pipeline.fetch`` turns it into ``HostBusy``."""


@dataclass
class _Line:
    turns: asyncio.Semaphore
    users: int = 0


class HostQueues:
    """Per-host waiting lines inside one process: at most ``width`` holders per host at a
    time, the others wait in order (asyncio's semaphores are FIFO). Lines are dropped when
    nobody holds or waits, so a process that saw a million hosts keeps none of them."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._lines: dict[str, _Line] = {}

    @asynccontextmanager
    async def turn(self, host: str, deadline: float) -> AsyncIterator[None]:
        """Hold one of ``host``'s turns while the block runs; ``NoSlot`` at ``deadline``."""
        line = self._lines.get(host)
        if line is None:
            line = self._lines[host] = _Line(asyncio.Semaphore(self.width))
        line.users += 1
        try:
            try:
                if line.turns.locked():  # a timer only for a real wait: most turns are free
                    async with asyncio.timeout_at(_loop_time(deadline)):
                        await line.turns.acquire()
                else:
                    await line.turns.acquire()
            except TimeoutError:
                message = f"host {host} busy (its turns are taken) until past the poll budget"
                raise NoSlot(message) from None
            try:
                yield
            finally:
                line.turns.release()
        finally:
            line.users -= 1
            if line.users == 0:
                del self._lines[host]

    def __len__(self) -> int:
        return len(self._lines)


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic`` deadline on the running loop's clock (``asyncio.timeout_at``)."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


def host_key(url: str) -> str:
    """The politeness unit: host name, plus the port when it is not the scheme's default."""
    parsed = URL(url)
    host = (parsed.host or "").lower().rstrip(".")
    return host if parsed.is_default_port() else f"{host}:{parsed.port}"


@dataclass(frozen=True)
class HostGate:
    redis: Redis
    keys: Keys
    limits: HostLimits
    # This process's waiters line up per host; only the heads of the lines ask Redis.
    _queues: HostQueues = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_queues", HostQueues(self.limits.max_in_flight))

    @asynccontextmanager
    async def slot(
        self, url: str, deadline: float, *, min_gap_seconds: float = 0.0
    ) -> AsyncIterator[None]:
        """Hold a slot for ``url``'s host while the block runs (``deadline``: monotonic).
        ``min_gap_seconds``: the host's own ask (Crawl-delay), when longer than the limits'."""
        host = host_key(url)
        token = uuid.uuid4().hex
        gap = max(self.limits.min_gap_seconds, min_gap_seconds)
        async with self._queues.turn(host, deadline):
            await self._acquire(host, token, gap, deadline)
            try:
                yield
            finally:
                # Shielded: a cancelled poll must still give its slot back at once.
                await asyncio.shield(self.redis.zrem(self.keys.host_slots(host), token))

    async def _acquire(self, host: str, token: str, gap: float, deadline: float) -> None:
        args = (
            token,
            self.limits.max_in_flight,
            round(gap * 1000),
            round(self.limits.lease_seconds * 1000),
        )
        keys = [self.keys.host_slots(host), self.keys.host_next_start(host)]
        while True:
            wait_ms = int(await ACQUIRE_HOST_SLOT(self.redis, keys, args))
            if wait_ms == 0:
                return
            # A little jitter so waiters of one host do not all ask again at the same instant.
            wait = wait_ms / 1000 * random.uniform(1.0, 1.2)
            if time.monotonic() + wait > deadline:
                raise NoSlot(f"host {host} busy (politeness limits) until past the poll budget")
            await asyncio.sleep(wait)
