"""The fan-out core with in-process calls driven by events (no sockets, no timers except
one deliberately tiny per-call deadline)."""

from __future__ import annotations

import asyncio
import time

import pytest

from proxy.deadline import Deadline
from proxy.errors import UpstreamTimeout
from proxy.orchestrator.content import Content
from proxy.orchestrator.cost import estimate
from proxy.orchestrator.fanout import Fanout, error_type
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.selection import Candidate
from proxy.orchestrator.wire import Reply
from tests.orchestrator.conftest import run


def candidate(name: str, timeout: float | None = None) -> Candidate:
    model = AIModel(name, timeout_seconds=timeout)
    return Candidate(model, 0.0, 0.5, 1.0, estimate(model, 10, 10))


def test_results_come_in_finishing_order_and_failures_become_records() -> None:
    release = {name: asyncio.Event() for name in ("a", "b", "c")}

    async def call(model: AIModel) -> Reply:
        await release[model.name].wait()
        if model.name == "b":
            raise UpstreamTimeout("timed out waiting for upstream x")
        if model.name == "c":
            raise ValueError("bad")
        return Reply(Content(text=model.name))

    async def go() -> list[tuple[str, str | None]]:
        fanout = Fanout(call, lambda m: 30.0)
        for name in ("a", "b", "c"):
            fanout.start(candidate(name))
        order = []
        for name in ("c", "a", "b"):
            release[name].set()
            finished = await fanout.next()
            order.append((finished.candidate.model.name, finished.error_type))
        assert fanout.pending == 0
        return order

    assert run(go()) == [("c", "ValueError"), ("a", None), ("b", "timeout")]


def test_a_call_past_its_deadline_times_out() -> None:
    async def call(model: AIModel) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def go() -> tuple[bool, str | None]:
        fanout = Fanout(call, lambda m: m.timeout_seconds or 30.0)
        fanout.start(candidate("slow", timeout=0.05))
        finished = await fanout.next()
        return finished.timed_out, finished.error_type

    assert run(go()) == (True, "timeout")


def test_cancel_reports_every_running_call() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def call(model: AIModel) -> Reply:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(model.name)
            raise
        raise AssertionError("unreachable")

    async def go() -> list[tuple[str, bool]]:
        fanout = Fanout(call, lambda m: 30.0)
        fanout.start(candidate("x"))
        fanout.start(candidate("y"))
        await started.wait()
        result = await fanout.cancel()
        return sorted((f.candidate.model.name, f.cancelled) for f in result)

    assert run(go()) == [("x", True), ("y", True)]
    assert sorted(cancelled) == ["x", "y"]


def test_next_without_calls_is_a_programming_error() -> None:
    async def go() -> None:
        await Fanout(lambda m: None, lambda m: 1.0).next()  # type: ignore[arg-type,return-value]

    with pytest.raises(RuntimeError):
        run(go())


def test_error_type_names_are_short_and_secret_free() -> None:
    assert error_type(UpstreamTimeout("x")) == "upstream_timeout"
    assert error_type(KeyError("sk-secret")) == "KeyError"


def test_a_deadline_caps_each_calls_timeout_and_says_so() -> None:
    """The model's own timeout is 30 s; the budget (a tiny one) ends the call first, and
    the record says the deadline, not the model, was the limit."""
    async def call(model: AIModel) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def go() -> tuple[bool, str | None]:
        fanout = Fanout(call, lambda m: 30.0, deadline=Deadline.after(0.05, time.monotonic()))
        fanout.start(candidate("hangs"))
        finished = await fanout.next()
        return finished.timed_out, finished.error_type

    assert run(go()) == (True, "deadline")


def test_a_model_timeout_shorter_than_the_budget_is_its_own() -> None:
    async def call(model: AIModel) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def go() -> str | None:
        fanout = Fanout(call, lambda m: 0.05, deadline=Deadline.after(60.0, time.monotonic()))
        fanout.start(candidate("hangs"))
        return (await fanout.next()).error_type

    assert run(go()) == "timeout"
