"""Per-host waiting lines inside a fetch process (pipeline/politeness.py: HostQueues)."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.politeness import HostQueues, NoSlot


async def test_a_host_has_at_most_width_holders_and_others_wait_in_order() -> None:
    queues = HostQueues(width=2)
    holding, order = 0, []
    most = 0

    async def use(n: int) -> None:
        nonlocal holding, most
        async with queues.turn("a.example", time.monotonic() + 5):
            holding += 1
            most = max(most, holding)
            order.append(n)
            await asyncio.sleep(0.01)
            holding -= 1

    await asyncio.gather(*(use(n) for n in range(6)))
    assert most == 2
    assert order == list(range(6))  # first come, first served
    assert len(queues) == 0  # lines are dropped once nobody holds or waits


async def test_hosts_do_not_wait_for_each_other() -> None:
    queues = HostQueues(width=1)
    busy = asyncio.Event()

    async def hold_a() -> None:
        async with queues.turn("a.example", time.monotonic() + 5):
            busy.set()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(hold_a())
    await busy.wait()
    started = time.monotonic()
    async with queues.turn("b.example", time.monotonic() + 5):
        assert time.monotonic() - started < 0.1
    await task


async def test_a_waiter_gives_up_at_the_deadline_and_leaves_the_line() -> None:
    queues = HostQueues(width=1)
    release, holder = await _held(queues)
    with pytest.raises(NoSlot, match=r"a\.example"):
        async with queues.turn("a.example", time.monotonic() + 0.05):
            pass
    release.set()
    await holder
    assert len(queues) == 0
    async with queues.turn("a.example", time.monotonic() + 1):  # the line works again
        pass


async def test_a_cancelled_waiter_does_not_take_a_turn() -> None:
    queues = HostQueues(width=1)
    release, holder = await _held(queues)
    waiter = asyncio.create_task(_enter(queues))
    await asyncio.sleep(0.01)
    waiter.cancel()
    release.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with queues.turn("a.example", time.monotonic() + 0.1):
        pass
    assert len(queues) == 0


async def _held(queues: HostQueues) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """a.example's only turn, taken by a task until the returned event is set."""
    release = asyncio.Event()

    async def hold() -> None:
        async with queues.turn("a.example", time.monotonic() + 5):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    return release, holder


async def _enter(queues: HostQueues) -> None:
    async with queues.turn("a.example", time.monotonic() + 5):
        pass
