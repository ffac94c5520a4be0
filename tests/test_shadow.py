"""The shadow runner's own guarantees, driven in-process with stub parts: a fault inside a
job (here, a comparator that raises) is caught and counted and no task leaks; the runner
never awaits anything on the caller's behalf."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from proxy.config.proxy import Route
from proxy.errors import UpstreamFailed
from proxy.orchestrator.target import TargetCall, TargetReply
from proxy.redisclient import redis_client
from proxy.routing import RouteTable
from proxy.shadow.budget import RedisBudget
from proxy.shadow.replay import Captured
from proxy.shadow.runner import ShadowJob, ShadowRunner
from proxy.usage.prices import PriceTable


def memory_budget(usd_per_hour: float) -> RedisBudget:
    """The shared budget's own code, on this test's in-process Redis (`memory://`)."""
    client = redis_client("memory://", connect_timeout=0.5, socket_timeout=0.5)
    return RedisBudget(client, "test", usd_per_hour)


class Answering:
    name = "stub"

    def supports(self, provider: str, path: str) -> bool:
        return True

    async def call(self, call: TargetCall) -> TargetReply:
        async def parts() -> Any:
            yield b'{"choices": [{"message": {"content": "hi"}}]}'

        return TargetReply(200, [(b"content-type", b"application/json")], parts())


class BrokenComparer:
    def candidate(self, **kwargs: Any) -> None:
        raise RuntimeError("comparator bug")

    def outcome(self, **kwargs: Any) -> None:
        return None


class NullTelemetry:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _job() -> ShadowJob:
    route = RouteTable([Route(prefix="/openai", upstream="https://x.invalid")]).resolve(
        b"/openai/v1/chat/completions", b"")
    call = TargetCall(role="shadow", provider="openai", path="/v1/chat/completions", query=b"",
                      method="POST", body=b"{}", payload={}, request_id="r1",
                      client_headers=[])
    return ShadowJob(call=call, route=route, api="openai_chat", legacy_headers=[], parent=None,
                     payload={})


def test_i3_a_comparator_fault_is_caught_counted_and_leaks_no_task() -> None:
    unretrieved: list[dict[str, Any]] = []

    async def scenario() -> ShadowRunner:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: unretrieved.append(context))
        runner = ShadowRunner(
            target=Answering(), replay=None, budget=memory_budget(1.0),  # type: ignore[arg-type]
            comparer=BrokenComparer(), telemetry=NullTelemetry(),  # type: ignore[arg-type]
            prices=PriceTable.from_sections({}), max_concurrency=4, timeout=5,
            reserve_usd=0.0, noise_percent=0, cap=1 << 20)
        job = _job()
        assert runner.launch(job) is True
        job.legacy_finished(Captured(200, [(b"content-type", b"application/json")],
                                     b'{"choices": [{"message": {"content": "hi"}}]}',
                                     False, 0.0, 0.0, 0.1))
        while runner.tasks:
            await asyncio.sleep(0.01)
        return runner

    runner = asyncio.run(scenario())
    gc.collect()
    assert runner.skipped["error"] == 1
    assert not runner.tasks
    assert unretrieved == []


def test_launch_drops_when_full_and_never_queues() -> None:
    async def scenario() -> ShadowRunner:
        runner = ShadowRunner(
            target=Answering(), replay=None, budget=memory_budget(1.0),  # type: ignore[arg-type]
            comparer=BrokenComparer(), telemetry=NullTelemetry(),  # type: ignore[arg-type]
            prices=PriceTable.from_sections({}), max_concurrency=1, timeout=5,
            reserve_usd=0.0, noise_percent=0, cap=1 << 20)
        first, second = _job(), _job()
        assert runner.launch(first) is True
        assert runner.launch(second) is False
        assert second.legacy.done()
        await runner.aclose()
        return runner

    runner = asyncio.run(scenario())
    assert runner.skipped["concurrency_full"] == 1


class FailingReplay:
    async def call(self, *args: Any) -> Captured:
        raise UpstreamFailed("legacy unreachable")


def test_a_failed_background_legacy_call_gives_its_reservation_back() -> None:
    async def scenario() -> float:
        budget = memory_budget(1.0)
        runner = ShadowRunner(
            target=Answering(), replay=FailingReplay(), budget=budget,  # type: ignore[arg-type]
            comparer=BrokenComparer(), telemetry=NullTelemetry(),  # type: ignore[arg-type]
            prices=PriceTable.from_sections({}), max_concurrency=4, timeout=5,
            reserve_usd=0.25, noise_percent=0, cap=1 << 20)
        for _ in range(3):
            hour = await runner._reserve("/openai")
            assert hour is not None
            with pytest.raises(UpstreamFailed):
                await runner._replay(_job(), "noise", hour)
        return await budget.spent()

    assert asyncio.run(scenario()) == 0.0


def test_a_route_kill_cancels_only_that_routes_shadows() -> None:
    from proxy.config.model import Config
    from proxy.flags.snapshot import FlagSnapshot
    from proxy.flags.view import FlagView, LocalLayer
    from proxy.shadow.runner import orchestrator_allowed

    def view(**snapshot: Any) -> FlagView:
        return FlagView.build(FlagSnapshot.model_validate(snapshot),
                              LocalLayer.from_config(Config()), "ready", "redis", 0.0)

    killed = view(shadow_percent=10, routes={"/openai": {"kill": True}})
    assert not orchestrator_allowed(killed, "/openai")
    assert orchestrator_allowed(killed, "/anthropic")
    zeroed = view(shadow_percent=10, routes={"/openai": {"shadow_percent": 0}})
    assert not orchestrator_allowed(zeroed, "/openai")
    assert not orchestrator_allowed(view(shadow_percent=10, kill=True), "/anthropic")
    assert orchestrator_allowed(view(system={"migration_mode": "full"}), "/openai")
