"""The ramp runner against a real redis-server and the real report store, fed with the
records the request path writes: healthy orchestrators are promoted step by step,
regressions are rolled back with their reason in the flags audit, no data holds, one
replica acts at a time, pause and resume, and nothing ever crashes the replica.

Time in a step is the injected clock (moved by hand); the lock's TTL is Redis's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.comparison import DivergencePolicy, Limits
from proxy.config import Settings, parse_config
from proxy.exchange import Captured
from proxy.orchestrator.target import TargetCall
from proxy.ramp.autopilot import RampRunner, build_ramp
from proxy.ramp.control import RampError, apply_until_stable, pause_ramp, resume_ramp
from proxy.ramp.state import RampStateInvalid, new_ramp
from proxy.recording.comparer import Comparer
from proxy.report.buffer import ReportBuffer
from tests.fakes.records import destination, quiet_telemetry, target_call
from tests.fakes.servers import RedisServer
from tests.ramp.helpers import (
    GUARDRAILS,
    NOW,
    ROUTE,
    World,
    eventually,
    run,
    tiny_policy,
    with_world,
    world,
)

pytestmark = pytest.mark.integration


async def route_flags(w: World) -> tuple[float | None, float | None, bool | None]:
    route = (await w.flags()).routes.get(ROUTE)
    assert route is not None
    return route.shadow_percent, route.divert_percent, route.kill


async def evaluated(runner: RampRunner) -> Any:
    evaluation = await runner.evaluate_once()
    assert evaluation is not None, "the runner did not evaluate"
    return evaluation


def test_a_healthy_orchestrator_is_promoted_through_every_step(
        redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = w.runner()
        await w.feed_noise(35)  # the noise floor's window spans every step
        await w.start()
        assert await route_flags(w) == (5, 0, None)
        first = await evaluated(runner)
        assert (first.action, first.reason) == ("hold", "too_soon")

        await w.feed(35)
        w.clock.advance(61)
        promoted = await evaluated(runner)
        assert promoted.action == "promote", promoted.message
        state = await w.state()
        assert (state.step, state.status, state.applied) == (1, "running", True)
        assert await route_flags(w) == (100, 0, None)

        # the first step's comparisons sit in the same report bucket, but do not count
        w.clock.advance(61)
        empty = await evaluated(runner)
        assert (empty.reason, empty.compared) == ("insufficient_data", ((ROUTE, 0),))
        await w.feed(35)
        assert (await evaluated(runner)).action == "promote"
        assert await route_flags(w) == (100, 50, None)

        w.clock.advance(61)
        await w.feed(35, divert=True)
        done = await evaluated(runner)
        assert done.action == "complete", done.message
        assert (await w.state()).status == "completed"
        assert await runner.evaluate_once() is None  # finished: nothing to do
        assert await w.store.holder() is None and not runner.holding

        audit = await w.audit()
        assert [(e.actor, e.reason.split(":")[0]) for e in reversed(audit)] == [
            ("cli:test", "ramp start"), ("ramp:replica-a", "ramp promote"),
            ("ramp:replica-a", "ramp promote")]
        assert 'promote to "shadow 100%"' in audit[-2].reason
        events = [h["event"] for h in await w.store.history(10)]
        assert events == ["complete", "promote", "promote", "start"]

    with_world(redis_server, body)


@pytest.mark.parametrize(("regression", "guardrail", "numbers"), [
    ({"label": "major"}, "divergence", "minor+major 100.0% vs noise floor 0.0%"),
    ({"failed": 20}, "error_rate", "orchestrator errors 20/40 = 50.0%"),
    ({"latency_s": 10.0}, "latency_p95", "latency delta p95 +"),
    ({"orchestrator_usd": 0.05}, "cost_per_request", "orchestrator $0.050000/request"),
], ids=["wrong-answers", "errors", "latency", "cost"])
def test_a_regression_is_rolled_back_with_its_reason(
        redis_server: RedisServer, regression: dict[str, Any], guardrail: str,
        numbers: str) -> None:
    async def body(w: World) -> None:
        runner = w.runner()
        await w.feed_noise(40)
        await w.start()
        await w.feed(40, **regression)
        w.clock.advance(5)  # long before the step's minimum duration: no waiting
        evaluation = await evaluated(runner)
        assert (evaluation.action, evaluation.reason) == ("rollback", "guardrail_breached")
        assert evaluation.breaches[0].guardrail == guardrail

        state = await w.state()
        assert (state.status, state.applied) == ("rolled_back", True)
        assert await route_flags(w) == (0, 0, True)  # on_rollback "kill", route scope
        entry = (await w.audit())[0]
        assert entry.actor == "ramp:replica-a" and entry.reason.startswith("ramp rollback: ")
        assert f"{ROUTE} {guardrail}: " in entry.reason and numbers in entry.reason
        assert entry.changes == {"routes": {ROUTE: {"shadow_percent": 0.0,
                                                    "divert_percent": 0.0, "kill": True}}}
        latest = await w.store.evaluation()
        assert latest is not None and latest["action"] == "rollback"
        assert latest["evaluated_by"] == "replica-a"
        assert (await w.store.history(1))[0]["event"] == "rollback"

        # rolled back stays rolled back: the runner lets go, resume refuses
        assert await runner.evaluate_once() is None
        assert await w.store.holder() is None
        with pytest.raises(RampError, match="start it again"):
            await resume_ramp(w.store, now=w.clock(), actor="cli:t", reason="")

    with_world(redis_server, body)


@pytest.mark.parametrize(("scope", "on_rollback", "expected"), [
    ("global", "kill", {"kill": True, "shadow_percent": 0.0, "divert_percent": 0.0,
                        "routes": {}}),
    ("global", "zero", {"kill": False, "shadow_percent": 0.0, "divert_percent": 0.0,
                        "routes": {"/anthropic": {"shadow_percent": 30.0,
                                                  "divert_percent": None, "kill": None}}}),
    ("route", "zero", {"kill": False, "shadow_percent": 0.0, "divert_percent": 0.0,
                       "routes": {"/anthropic": {"shadow_percent": 30.0,
                                                 "divert_percent": None, "kill": None},
                                  ROUTE: {"shadow_percent": 0.0, "divert_percent": 0.0,
                                          "kill": None}}}),
])
def test_rollback_writes_the_policys_safe_state(redis_server: RedisServer, scope: str,
                                                on_rollback: str,
                                                expected: dict[str, Any]) -> None:
    async def body(w: World) -> None:
        scoped: dict[str, Any] = {"route": None, "measure_routes": [ROUTE]} \
            if scope == "global" else {}
        policy = tiny_policy(on_rollback=on_rollback, **scoped)
        await w.writer.update({"routes": {"/anthropic": {"shadow_percent": 30}}},
                              actor="cli:other", reason="another experiment")
        await w.feed_noise(40)
        await w.start(policy, step=2)  # divert 50 %
        await w.feed(40, divert=True, fallbacks=30)
        evaluation = await evaluated(w.runner())
        assert [c.guardrail for c in evaluation.breaches] == ["fallback_rate"]
        flags = (await w.flags()).to_dict()
        assert {key: flags[key] for key in expected} == expected
        assert "divert fallbacks 30/40" in (await w.audit())[0].reason

    with_world(redis_server, body)


def test_no_data_holds_forever(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = w.runner()
        await w.start()
        for _ in range(5):
            w.clock.advance(600)
            evaluation = await evaluated(runner)
            assert (evaluation.action, evaluation.reason) == ("hold", "insufficient_data")
            assert f"{ROUTE} 0/30 compared" in evaluation.message
        assert (await w.state()).step == 0
        assert len(await w.audit()) == 1  # only the start

    with_world(redis_server, body)


def test_only_the_lock_holder_acts(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        a, b = w.runner("replica-a"), w.runner("replica-b")
        await w.feed_noise(35)
        await w.start()
        assert await a.evaluate_once() is not None and a.holding
        assert await b.evaluate_once() is None and not b.holding
        holder = await w.store.holder()
        assert holder is not None and holder.replica_id == "replica-a"

        await w.feed(35)
        w.clock.advance(61)
        assert await b.evaluate_once() is None
        assert (await evaluated(a)).action == "promote"
        assert [h["event"] for h in await w.store.history(10)] == ["promote", "start"]

        await a.aclose()  # a replica shutting down hands over at once
        assert await w.store.holder() is None
        assert await b.evaluate_once() is not None
        assert await a.evaluate_once() is None
        holder = await w.store.holder()
        assert holder is not None and holder.replica_id == "replica-b"

    with_world(redis_server, body)


def test_a_stalled_holder_loses_the_lock_and_stops_acting(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        policy = tiny_policy(evaluation_interval_seconds=0.1, lock_ttl_seconds=0.3)
        a, b = w.runner("replica-a"), w.runner("replica-b")
        await w.start(policy)
        assert await a.evaluate_once() is not None
        # a stalls (no tick renews its lease); once Redis expires it, b takes over
        await eventually(b.evaluate_once, message="replica-b taking the expired lock")
        assert await a.evaluate_once() is None
        assert a.lost_locks == 1 and not a.holding and b.holding

    with_world(redis_server, body)


def test_pause_stops_promotions_and_resume_continues(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = w.runner()
        await w.feed_noise(35)
        await w.start()
        await w.feed(35)
        w.clock.advance(61)
        paused = await pause_ramp(w.store, now=w.clock(), actor="cli:ops", reason="look")
        assert paused.status == "paused"
        with pytest.raises(RampError, match="no running ramp to pause"):
            await pause_ramp(w.store, now=w.clock(), actor="cli:ops", reason="")
        held = await evaluated(runner)
        assert (held.action, held.reason) == ("hold", "paused")
        assert "paused by cli:ops" in held.message and "look" in held.message
        assert (await w.state()).step == 0

        await resume_ramp(w.store, now=w.clock(), actor="cli:ops", reason="")
        with pytest.raises(RampError, match="no paused ramp"):
            await resume_ramp(w.store, now=w.clock(), actor="cli:ops", reason="")
        assert (await evaluated(runner)).action == "promote"
        events = [h["event"] for h in await w.store.history(10)]
        assert events == ["promote", "resume", "pause", "start"]

    with_world(redis_server, body)


def test_a_paused_ramp_still_rolls_back(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        await w.feed_noise(40)
        await w.start()
        await pause_ramp(w.store, now=w.clock(), actor="cli:ops", reason="")
        await w.feed(40, label="major")
        assert (await evaluated(w.runner())).action == "rollback"
        assert (await w.state()).status == "rolled_back"

    with_world(redis_server, body)


def test_the_runner_finishes_applying_a_half_written_start(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        # an operator's `ramp start` stopped after writing the state, before the flags
        state = new_ramp(tiny_policy(), source="t", step=0, now=w.clock(), actor="cli:t",
                         reason="half", baselines={})
        assert await w.store.write(None, state) == "ok"
        assert await w.runner().evaluate_once() is None  # this tick applies
        assert (await w.state()).applied
        assert await route_flags(w) == (5, 0, None)
        entry = (await w.audit())[0]
        assert (entry.actor, entry.reason) == ("ramp:replica-a", "ramp start: half")

    with_world(redis_server, body)


def test_flags_follow_a_transition_made_while_applying(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        old = await w.start()
        old_raw, _ = await w.store.read()
        assert old_raw is not None
        # an operator restarts at step 3 while a replica is still applying the old state
        await w.start(step=2, restart=True)
        assert await route_flags(w) == (100, 50, None)
        await apply_until_stable(w.store, w.writer, old_raw, old, actor="ramp:slow")
        assert await route_flags(w) == (100, 50, None)  # the newest state wins
        # its stale write, then the correction that follows the newest state
        slow = [e.changes for e in await w.audit() if e.actor == "ramp:slow"]
        assert [c["routes"][ROUTE]["divert_percent"] for c in slow] == [50.0, 0.0]
        state = await w.state()
        assert (state.step, state.applied) == (2, True)

    with_world(redis_server, body)


def test_start_refuses_a_running_ramp_and_can_clear_the_kill_switch(
        redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        await w.start()
        with pytest.raises(RampError, match="already running"):
            await w.start()
        await w.writer.rollback(actor="cli:ops", reason="stop everything")
        state = await w.start(step=1, restart=True, clear_kill=True)
        flags = await w.flags()
        assert state.step == 1 and not flags.kill
        assert await route_flags(w) == (100, 0, None)
        with pytest.raises(RampError, match="steps 1 to 3, not 4"):
            await w.start(step=3, restart=True)

    with_world(redis_server, body)


def test_with_no_ramp_the_runner_does_nothing(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = w.runner(idle_interval=0.01)
        await runner.start()

        async def ticked() -> bool:
            return runner.ticks >= 5

        await eventually(ticked, message="five idle ticks")
        await runner.aclose()
        assert (runner.evaluations, runner.failures) == (0, 0)
        assert await w.ramp_keys() == []
        assert await w.writer.read() == (None, None)

    with_world(redis_server, body)


def test_the_loop_drives_the_ramp_with_one_actor(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        a = w.runner("replica-a", idle_interval=0.02)
        b = w.runner("replica-b", idle_interval=0.02)
        await a.start()
        await b.start()
        try:
            await w.feed_noise(35)
            await w.start()
            await w.feed(35)
            w.clock.advance(61)

            async def promoted() -> bool:
                return (await w.state()).step == 1

            await eventually(promoted, message="the loop promoting step 1")
        finally:
            await a.aclose()
            await b.aclose()
        events = [h["event"] for h in await w.store.history(10)]
        assert events == ["promote", "start"]
        assert a.failures == b.failures == 0

    with_world(redis_server, body)


def test_redis_outages_and_garbage_never_stop_the_runner(own_redis: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = w.runner(idle_interval=0.02)
        await w.start()
        await runner.start()
        try:
            def evaluations_over(n: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    return runner.evaluations > n
                return check

            await eventually(evaluations_over(0), message="a first evaluation")
            await w.client.set(w.store.keys.state, b"garbage")
            failures = runner.failures

            async def failing() -> bool:
                return runner.failures >= failures + 2

            await eventually(failing, message="failures on a garbage state")
            with pytest.raises(RampStateInvalid):
                await runner.evaluate_once()
            own_redis.stop()
            failures = runner.failures
            await eventually(failing, message="failures while Redis is down")
            own_redis.start()  # comes back empty

            async def restarted() -> bool:
                try:
                    await w.start()
                except Exception:  # stale pooled connections fail once after the restart
                    return False
                return True

            await eventually(restarted, message="a new ramp after the restart")
            await eventually(evaluations_over(runner.evaluations),
                             message="evaluations after the restart")
            assert runner._task is not None and not runner._task.done()
            own_redis.stop()
        finally:
            await runner.aclose()  # must not raise with Redis gone

    async def main() -> None:
        async with world(own_redis.url) as w:
            await body(w)

    run(main())


def test_build_ramp_wires_a_replica(redis_server: RedisServer, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        config = parse_config({"redis": {"url": redis_server.url, "key_prefix": w.prefix},
                               "flags": {"replica_id": "pod-7"}})
        runner = build_ramp(Settings(config, "test", tmp_path), w.client)
        assert runner.replica_id == "pod-7" and runner.actor == "ramp:pod-7"
        assert await runner.evaluate_once() is None
        await w.start()
        assert await runner.evaluate_once() is not None
        holder = await w.store.holder()
        assert holder is not None and holder.replica_id == "pod-7"
        await runner.aclose()

    with_world(redis_server, body)


def test_evaluations_are_stored_for_status(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        await w.feed_noise(35)
        await w.start()
        await w.feed(10)
        await evaluated(w.runner())
        latest = await w.store.evaluation()
        assert latest is not None
        assert (latest["action"], latest["reason"], latest["step"]) == ("hold", "too_soon", 0)
        assert latest["compared"] == {ROUTE: 10} and latest["at"] == NOW
        assert {c["guardrail"] for c in latest["checks"]} >= {"divergence", "error_rate"}

    with_world(redis_server, body)


def test_the_ramp_runs_on_the_in_process_store() -> None:
    """`memory://` (fakeredis with Lua, for the demo without Redis): same code path."""
    async def body(w: World) -> None:
        runner = w.runner()
        await w.feed_noise(35)
        await w.start()
        await w.feed(35)
        w.clock.advance(61)
        assert (await evaluated(runner)).action == "promote"
        await w.feed(40, label="major")
        assert (await evaluated(runner)).action == "rollback"
        assert await route_flags(w) == (0, 0, True)
        assert [h["event"] for h in await w.store.history(5)] == ["rollback", "promote",
                                                                   "start"]
        await runner.aclose()

    async def main() -> None:
        async with world("memory://") as w:
            await body(w)

    run(main())


def test_an_orchestrator_that_changes_facts_trips_the_major_guardrail(
        redis_server: RedisServer) -> None:
    """End to end from the answers: the comparer labels a changed fact `major` (one word
    apart: a text-similarity label would call it equivalent), the report counts it, the
    ramp's measurement reads the major share from the report, and `divergence_major`
    rolls back, while minor+major alone, with a loose limit, would only hold."""
    guardrails = {**GUARDRAILS, "divergence": {"max_excess": 0.6, "max_excess_major": 0.2,
                                               "min_samples": 30}}

    async def body(w: World) -> None:
        buffer = ReportBuffer(w.report)
        comparer = Comparer(DivergencePolicy(), Limits(), quiet_telemetry(), buffer,
                            clock=w.clock)
        for index in range(40):  # legacy against itself: the same facts, reworded
            comparer.noise(shadow_call(f"n{index}"), legacy=chat(PARIS),
                           resample=chat("Paris is the capital of France."))
        await buffer.flush()
        runner = w.runner()
        await w.start(tiny_policy(guardrails=guardrails))
        for index in range(40):
            comparer.candidate(shadow_call(f"c{index}"), legacy=chat(PARIS),
                               candidate=chat(LYON if index % 2 else PARIS), parent=None,
                               outcome="ok")
        await buffer.flush()
        w.clock.advance(5)
        evaluation = await evaluated(runner)
        assert (evaluation.action, evaluation.reason) == ("rollback", "guardrail_breached")
        assert [b.guardrail for b in evaluation.breaches] == ["divergence_major"]
        measured = {c.guardrail: c for c in evaluation.checks}
        assert measured["divergence"].verdict == "inconclusive"
        assert measured["divergence_major"].samples == 40
        assert measured["divergence_major"].value == pytest.approx(0.5)
        assert await route_flags(w) == (0, 0, True)

    with_world(redis_server, body)


PARIS = "The capital of France is Paris."
LYON = "The capital of France is Lyon."


def chat(text: str) -> Captured:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})
    return Captured(200, [(b"content-type", b"application/json")], body, False, 0.0, 0.1, 0.2)


def shadow_call(request_id: str) -> TargetCall:
    where = destination(ROUTE.encode() + b"/v1/chat/completions")
    return target_call("shadow", where, payload={"model": "gpt-4o-mini"},
                       request_id=request_id)
