"""Stopping background tasks within a bound.

Layer: adapter (asyncio). On Python 3.11 a cancellation can be lost inside
`asyncio.wait_for`, which redis-py uses for every command: a task cancelled just as a
command completes carries on as if nothing happened. Owners therefore stop their loops
with a flag as well, and wait for their tasks here: cancelled again while they run,
never waited for longer than the budget, so shutdown can never hang on one of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("llm_shadow.tasks")


async def stop(tasks: Iterable[asyncio.Task[object]], budget: float = 2.0) -> None:
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    for task in pending:  # at least once, whatever the budget
        task.cancel()
    while pending and loop.time() < deadline:
        _, pending = await asyncio.wait(pending, timeout=min(0.2, deadline - loop.time()))
        for task in pending:
            task.cancel()
    for task in pending:
        log.warning("background task %s did not stop within %.1fs", task.get_name(), budget)
