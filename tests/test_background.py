"""Stopping background tasks: a task that loses its first cancellation (as one can
inside redis-py on Python 3.11) is cancelled again; one that never stops is given up on
after the budget, so shutdown cannot hang."""

from __future__ import annotations

import asyncio

from proxy.background import stop


async def _ignores_first_cancel(log: list[str]) -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        log.append("swallowed")
    await asyncio.sleep(3600)


async def _stops_only_when_released(released: asyncio.Event) -> None:
    while not released.is_set():
        try:
            await released.wait()
        except asyncio.CancelledError:
            continue


def test_a_lost_cancellation_is_repeated() -> None:
    async def scenario() -> tuple[list[str], bool]:
        log: list[str] = []
        task = asyncio.create_task(_ignores_first_cancel(log))
        await asyncio.sleep(0)
        await stop([task], budget=5.0)
        return log, task.cancelled()

    assert asyncio.run(scenario()) == (["swallowed"], True)


def test_a_task_that_never_stops_is_given_up_on() -> None:
    async def scenario() -> bool:
        released = asyncio.Event()
        task = asyncio.create_task(_stops_only_when_released(released))
        await asyncio.sleep(0)
        await stop([task], budget=0.3)
        done = task.done()
        released.set()
        await task
        return done

    assert asyncio.run(scenario()) is False
