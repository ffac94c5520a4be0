"""The runtime's lifecycle, in-process: entering starts every long-lived resource without
waiting for Redis, leaving closes them all (no task left running) in the documented
order, and `stats()` has the shape `/statz` shows. Redis is `memory://` (every real code
path, in process) or a port nothing listens on."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from pydantic import SecretStr

from proxy.config import Settings, parse_config
from proxy.decision import decide
from proxy.exchange import Captured
from proxy.redisclient import in_process, redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.runtime import Runtime
from proxy.shadow.runner import ShadowJob
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.proxyproc import routes_to
from tests.fakes.records import exchange, target_call
from tests.fakes.servers import async_wait_for, free_port, wait_for

pytestmark = pytest.mark.integration

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telemetry runs (spans and metrics are made) but exports nowhere."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(60):
            return await make()
    return asyncio.run(main())


def settings_for(upstream_url: str = "http://127.0.0.1:9", *, redis: str = "memory://",
                 prefix: str | None = None, **sections: Any) -> Settings:
    data: dict[str, Any] = {"proxy": {"routes": routes_to(upstream_url)},
                            "redis": {"url": redis,
                                      "key_prefix": prefix or f"rt-{uuid.uuid4().hex[:8]}"},
                            **sections}
    # Each model's api_key_env is set, as in production (a model without its key is
    # never selected).
    keys = {entry["name"]: SecretStr(f"sk-{entry['name']}") for entry in data.get("models", ())}
    return Settings(config=parse_config(data, "<test>"), source="<test>", base_dir=REPO,
                    model_keys=keys)


def others() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


# --- entering and leaving -----------------------------------------------------------

def test_entering_starts_everything_and_leaving_closes_everything() -> None:
    async def go() -> None:
        assert others() == set()
        runtime = Runtime(settings_for())
        assert not runtime.ready
        async with runtime:
            assert runtime.ready
            assert others()  # flags, heartbeat, learning, ramp, report, recorder
            await async_wait_for(lambda: runtime.flags.current.state == "ready",
                                 message="the first flag read from memory://")
            assert runtime.flags.current.source == "default"  # no snapshot: config defaults
        assert not runtime.ready
        assert runtime.telemetry.closed
        await async_wait_for(lambda: not others(), message="every task stopped")
    run(go)


def test_leaving_never_waits_on_a_lost_cancellation() -> None:
    """On Python 3.11 a cancellation can be lost inside a redis-py call; every background
    loop must stop anyway. Entering and leaving repeatedly, at different moments of the
    loops' rounds, must never hang (before the loops stopped on a flag too, about one exit
    in ten did)."""
    async def go() -> None:
        for round_ in range(20):
            async with Runtime(settings_for()) as runtime:
                for _ in range(round_ % 5):
                    await asyncio.sleep(0)
                assert runtime.ready
            await async_wait_for(lambda: not others(), message="every task stopped")
    run(go)


def test_leaving_cancels_shadows_then_drains_the_recorder_then_flushes_the_report(
        upstream_url: str) -> None:
    """The documented order, observed from outside: a shadow still waiting for its
    model is cancelled (not counted as a kill), the exchange queued just before shutdown
    is recorded, and its cost is in Redis after the runtime is gone."""
    prefix = f"rt-{uuid.uuid4().hex[:8]}"
    with ModelFleet({"slow": ModelBehaviour(hang=True)}) as fleet:
        settings = settings_for(upstream_url, prefix=prefix, models=fleet.entries(),
                                pricing={"gpt-4o-mini": {"input_per_1m": 1.0,
                                                         "output_per_1m": 2.0}})

        async def go() -> float:
            async with Runtime(settings) as runtime:
                launched = _hanging_shadow(runtime)
                await async_wait_for(lambda: fleet["slow"].requests,
                                     message="the shadow reached its model")
                runtime.recorder.record(_legacy_answer(runtime))
                assert launched and runtime.shadow.tasks
            assert not runtime.shadow.tasks
            assert runtime.shadow.skipped["kill"] == 0  # shutdown is not a kill
            assert runtime.recorder.queue.qsize() == 0
            assert runtime.report_buffer is not None and not runtime.report_buffer.pending
            client = redis_client("memory://", connect_timeout=1, socket_timeout=1)
            try:
                summary = await ReportStore(client, prefix).summary("/openai",
                                                                    time.time() - 3600)
            finally:
                await client.aclose()
            return summary.cost["legacy"].usd

        assert run(go) == pytest.approx(0.002)
        # The model saw the shadow's call go away (its connection closed).
        wait_for(lambda: fleet["slow"].requests[0].disconnected,
                 message="the model saw the cancelled call")


def _hanging_shadow(runtime: Runtime) -> bool:
    """Launch a shadow of one chat request through the runner the handler uses."""
    where = runtime.routes.resolve(b"/openai/v1/chat/completions", b"")
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    call = target_call("shadow", where, payload=payload, body=orjson.dumps(payload))
    return runtime.shadow.launch(ShadowJob(call, None))


def _legacy_answer(runtime: Runtime) -> Any:
    record = exchange(runtime.routes.resolve(b"/openai/v1/chat/completions", b""),
                      telemetry=runtime.telemetry)
    record.status = 200
    record.response_headers = [(b"content-type", b"application/json")]
    record.request_body = b'{"model": "gpt-4o-mini", "messages": []}'
    record.response_body = (b'{"model": "gpt-4o-mini", "choices": [], "usage": '
                            b'{"prompt_tokens": 1000, "completion_tokens": 500}}')
    record.finished_at = record.started_at
    record.completed = True
    return record


def test_the_judge_is_wired_and_a_reload_that_switches_it_off_cancels_its_calls() -> None:
    """The comparer offers comparisons to the runtime's judge; a reload that switches
    the judge off applies at once and cancels the judgement still waiting for its
    model."""
    with ModelFleet({"judge": ModelBehaviour(hang=True)}) as fleet:
        judge = {"enabled": True, "model": "judge", "routes": ["/openai"],
                 "sample_percent": 100, "labels": ["minor", "major"]}
        settings = settings_for(models=fleet.entries(judge={"enabled": False}),
                                comparison={"judge": judge})

        async def go() -> None:
            async with Runtime(settings) as runtime:
                assert runtime.comparer.judge is runtime.judge
                where = runtime.routes.resolve(b"/openai/v1/chat/completions", b"")
                runtime.comparer.candidate(target_call("shadow", where),
                                           legacy=_answer("Paris is in France."),
                                           candidate=_answer("Lyon is in France."),
                                           parent=None, outcome="ok")
                await async_wait_for(lambda: fleet["judge"].requests,
                                     message="the judgement reached its model")
                assert runtime.stats()["judge"]["in_flight"] == 1
                runtime._apply_settings(settings_for(models=fleet.entries(),
                                                     comparison={}))
                assert not runtime.judge.section.enabled
                await async_wait_for(lambda: not runtime.judge.tasks,
                                     message="the withdrawn judgement cancelled")
            assert not runtime.judge.tasks

        run(go)
        wait_for(lambda: fleet["judge"].requests[0].disconnected,
                 message="the judge model saw the cancelled call")


def _answer(text: str) -> Captured:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})
    return Captured(200, [(b"content-type", b"application/json")], body, False, 0.0, 0.1,
                    1.0)


# --- Redis away -----------------------------------------------------------------------

def test_start_up_does_not_wait_for_an_unreachable_redis() -> None:
    """Nothing listens on the Redis port: the runtime is ready at once, the flags stay
    not_ready (so every request is legacy), the watcher keeps trying in the background,
    and shutdown does not hang on Redis either."""
    closed = free_port()

    async def go() -> None:
        async with Runtime(settings_for(redis=f"redis://127.0.0.1:{closed}/0",
                                        traffic={"shadow_percent": 100})) as runtime:
            assert runtime.ready
            view = runtime.flags.current
            assert view.state == "not_ready"
            await async_wait_for(lambda: any(key.startswith("read_errors")
                                             for key in runtime.flags.stats),
                                 message="a failed flag read")
            view = runtime.flags.current
            assert view.state == "not_ready"
            decision = decide(view, "/openai", "/v1/chat/completions", "any",
                              view.local.eligible_paths)
            assert (decision.action, decision.reason) == ("legacy", "not_ready")
        await async_wait_for(lambda: not others(), message="every task stopped")

    run(go)


# --- stats() ----------------------------------------------------------------------------

def test_stats_shape_with_redis() -> None:
    async def go() -> dict[str, object]:
        settings = settings_for(shadow={"max_concurrency": 7},
                                proxy={"routes": routes_to("http://127.0.0.1:9"),
                                       "pool": {"max_connections": 9,
                                                "max_keepalive_connections": 9}})
        async with Runtime(settings) as runtime:
            return runtime.stats()

    stats = run(go)
    ramp, pressure = stats.pop("ramp"), stats.pop("pressure")
    judge = stats.pop("judge")
    assert judge == {"enabled": False, "in_flight": 0, "max_concurrency": 4, "verdicts": {},
                     "failed": {}, "skipped": {}, "not_judged": {},
                     "cancelled": 0}
    assert stats == {
        "in_flight": 0,
        "legacy_pool": {"in_use": 0, "size": 9},
        "shadow": {"in_flight": 0, "max_concurrency": 7, "completed": 0, "skipped": {}},
        "divert": {"fallbacks": {}, "streams_cut": {}},
        "recorder": {"queued": 0, "dropped": 0},
        "report": {"pending": 0, "dropped": 0},
    }
    assert isinstance(ramp, dict) and set(ramp) == {"holding", "evaluations", "failures"}
    assert isinstance(pressure, dict) and {"lag_ms", "shedding"} <= set(pressure)


def test_stats_shape_without_redis() -> None:
    """Without a Redis server the runtime runs every store in process (`memory://`, the
    one way to run without Redis): the ramp and the report are there all the same."""
    async def go() -> dict[str, object]:
        async with Runtime(settings_for(redis="memory://")) as runtime:
            assert in_process(runtime.redis)
            return runtime.stats()

    stats = run(go)
    assert isinstance(stats["ramp"], dict) and stats["report"] == {"pending": 0, "dropped": 0}
    assert set(stats) == {"in_flight", "legacy_pool", "shadow", "pressure", "divert", "judge",
                          "recorder", "ramp", "report"}
