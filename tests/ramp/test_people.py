"""The ramp yields to people, against a real redis-server: a manual rollback, `set`, admin
or MigrationAdapter write, or a configuration rollback, made while the ramp runs, pauses
it with who changed what and why (it used to keep showing RUNNING at a step whose flags
were gone, and hold forever); a change elsewhere does not; `resume` applies the step
again and refuses while the kill switch is on; `stop` ends the ramp, leaves the flags and
releases the lock, and `start` can begin again."""

from __future__ import annotations

import pytest

from proxy.flags.writer import FlagWriter
from proxy.ramp.autopilot import RampRunner
from proxy.ramp.control import RampError, resume_ramp, stop_ramp
from tests.fakes.servers import RedisServer
from tests.ramp.helpers import ROUTE, World, tiny_policy, with_world

pytestmark = pytest.mark.integration


async def started(w: World, **runner: object) -> RampRunner:
    """A running ramp at its first step, applied, with the runner holding the lock."""
    await w.feed_noise(35)
    await w.start(tiny_policy())
    ramp = w.runner(**runner)  # type: ignore[arg-type]
    assert (await ramp.evaluate_once()) is not None
    return ramp


def test_a_manual_rollback_pauses_the_ramp_with_who_what_and_why(
        redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = await started(w)
        person = FlagWriter(w.client, w.prefix)
        rolled = await person.rollback(actor="cli:alice@laptop",
                                       reason="divergence above noise")
        evaluation = await runner.evaluate_once()
        assert evaluation is not None and evaluation.action == "pause"
        state = await w.state()
        assert (state.status, state.event, state.updated_by) == \
            ("paused", "pause", "ramp:replica-a")
        assert "changed by cli:alice@laptop" in state.reason
        assert f"version {rolled.version}: 'divergence above noise'" in state.reason
        assert "kill switch off -> on" in state.reason and "shadow 5% -> unset" in state.reason
        assert (await w.flags()).version == rolled.version  # the ramp wrote no flags
        history = await w.store.history(5)
        assert history[0]["event"] == "pause" and "cli:alice" in history[0]["reason"]
        # Paused, it holds (and says why) instead of acting again.
        held = await runner.evaluate_once()
        assert held is not None and (held.action, held.reason) == ("hold", "paused")
        assert "cli:alice" in held.message

    with_world(redis_server, body)


def test_a_manual_set_of_the_ramps_route_pauses_it(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = await started(w)
        await FlagWriter(w.client, w.prefix).update(
            {"routes": {ROUTE: {"shadow_percent": 50}}}, actor="admin-api", reason="try more")
        assert (await runner.evaluate_once()).action == "pause"  # type: ignore[union-attr]
        assert "admin-api" in (await w.state()).reason
        assert "shadow 5% -> 50%" in (await w.state()).reason

    with_world(redis_server, body)


def test_a_change_elsewhere_does_not_pause_it(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = await started(w)
        person = FlagWriter(w.client, w.prefix)
        await person.update({"routes": {"/anthropic": {"shadow_percent": 20}},
                             "feature_flags": {"enable_validation": False}}, actor="cli:bob")
        evaluation = await runner.evaluate_once()
        assert evaluation is not None and evaluation.action == "hold"
        assert (await w.state()).status == "running"

    with_world(redis_server, body)


def test_a_configuration_rollback_pauses_it(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        on = [True]
        runner = await started(w, config_use_orchestrator=lambda: on[0])
        on[0] = False
        assert (await runner.evaluate_once()).action == "pause"  # type: ignore[union-attr]
        assert "config.json of replica replica-a" in (await w.state()).reason

    with_world(redis_server, body)


def test_resume_applies_the_step_again_and_refuses_while_killed(
        redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = await started(w)
        person = FlagWriter(w.client, w.prefix)
        await person.update({"routes": {ROUTE: {"shadow_percent": 1}}}, actor="cli:bob")
        await runner.evaluate_once()
        resumed = await resume_ramp(w.store, now=w.clock(), actor="cli:bob", reason="go on",
                                    writer=w.writer)
        assert resumed.status == "running"
        assert (await w.flags()).routes[ROUTE].shadow_percent == 5  # the step again
        again = await runner.evaluate_once()
        assert again is not None and again.action == "hold"  # no pause: the new baseline

        await person.rollback(actor="cli:bob", reason="incident")
        await runner.evaluate_once()
        with pytest.raises(RampError, match="the kill switch is on"):
            await resume_ramp(w.store, now=w.clock(), actor="cli:bob", reason="",
                              writer=w.writer)

    with_world(redis_server, body)


def test_stop_ends_the_ramp_keeps_the_flags_and_releases_the_lock(
        redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        runner = await started(w)
        assert await w.store.holder() is not None
        before = await w.flags()
        stopped = await stop_ramp(w.store, now=w.clock(), actor="cli:ops", reason="enough")
        assert (stopped.status, stopped.updated_by, stopped.reason) == \
            ("stopped", "cli:ops", "enough")
        assert await w.store.holder() is None
        assert await runner.evaluate_once() is None  # nothing to run: the runner lets go
        assert await w.store.holder() is None
        assert (await w.flags()).version == before.version
        assert (await w.store.history(1))[0]["event"] == "stop"
        with pytest.raises(RampError, match="no running or paused ramp to stop"):
            await stop_ramp(w.store, now=w.clock(), actor="cli:ops", reason="")
        with pytest.raises(RampError, match="was stopped"):
            await resume_ramp(w.store, now=w.clock(), actor="cli:ops", reason="")
        again = await w.start(tiny_policy())  # no --restart needed
        assert (again.status, again.event) == ("running", "start")

    with_world(redis_server, body)
