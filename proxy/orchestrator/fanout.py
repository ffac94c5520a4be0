"""Running model calls concurrently, each under its own deadline, and taking results as
they finish so the caller can stop early.

Layer: core (asyncio only; the actual I/O is the `call` function it is given). Every
call runs as a task owned by the `Fanout`; whatever happens to the request (early stop,
client gone, divert deadline), `cancel()` ends the ones still running and reports them,
so no call outlives its request and every started call is accounted for. A call's
failure never raises out of here: it becomes a `Finished` with an error type, which
excludes the model's answer and counts against its record.

With a `Deadline` (a divert's one budget, `proxy.deadline`), each call's own timeout is
capped by what is left of it; a call the budget ended is a timeout with error type
`deadline`, so the request can say the budget, not the model, ran out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.deadline import Deadline
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.selection import Candidate
from proxy.orchestrator.wire import Reply

CallFn = Callable[[AIModel], Awaitable[Reply]]


@dataclass(frozen=True)
class Finished:
    candidate: Candidate
    started_at: float
    ended_at: float
    latency: float
    reply: Reply | None = None
    error_type: str | None = None
    timed_out: bool = False
    cancelled: bool = False


@dataclass(frozen=True)
class _Started:
    candidate: Candidate
    wall: float
    mono: float


def error_type(exc: BaseException) -> str:
    """A short, secret-free name for a failure: the proxy's error code when there is one
    (`upstream_timeout`, `http_429`, ...), else the exception's class name."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or getattr(exc, "code", None) == "upstream_timeout"


class Fanout:
    def __init__(self, call: Callable[[AIModel], Awaitable[Reply]],
                 timeout_of: Callable[[AIModel], float],
                 clock: Callable[[], float] = time.time, deadline: Deadline | None = None):
        self._call = call
        self._timeout_of = timeout_of
        self._clock = clock
        self.deadline = deadline
        self._tasks: dict[asyncio.Task[Finished], _Started] = {}

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def start(self, candidate: Candidate) -> None:
        started = _Started(candidate, self._clock(), time.monotonic())
        task = asyncio.get_running_loop().create_task(self._run(started))
        self._tasks[task] = started

    async def next(self) -> Finished:
        """The next call to finish (the earliest, if several finished together)."""
        if not self._tasks:
            raise RuntimeError("no call is running")
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        task = min(done, key=lambda t: t.result().ended_at)
        del self._tasks[task]
        return task.result()

    async def cancel(self) -> list[Finished]:
        """Cancel every call still running; each is reported as cancelled."""
        if not self._tasks:
            return []
        tasks = dict(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out = []
        for task, started in tasks.items():
            if not task.cancelled() and task.exception() is None:
                out.append(task.result())  # it finished before the cancel landed
                continue
            now_mono = time.monotonic()
            out.append(Finished(started.candidate, started.wall,
                                started.wall + (now_mono - started.mono),
                                now_mono - started.mono, error_type="cancelled",
                                cancelled=True))
        return out

    async def _run(self, started: _Started) -> Finished:
        model = started.candidate.model
        reply: Reply | None = None
        failure: BaseException | None = None
        timeout = self._timeout_of(model)
        deadline = self.deadline
        by_deadline = False
        if deadline is not None:
            capped = deadline.cap(timeout, started.mono)
            timeout, by_deadline = capped, capped < timeout
        try:
            async with asyncio.timeout(timeout):
                reply = await self._call(model)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any caller failure is this model's failure, recorded
            failure = exc
        latency = time.monotonic() - started.mono
        ended = started.wall + latency
        if failure is None:
            return Finished(started.candidate, started.wall, ended, latency, reply=reply)
        timed_out = _is_timeout(failure)
        kind = ("deadline" if by_deadline else "timeout") if timed_out else error_type(failure)
        return Finished(started.candidate, started.wall, ended, latency, error_type=kind,
                        timed_out=timed_out)
