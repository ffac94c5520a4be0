"""Ramp states to flag changes (route or global scope; kill or zero on rollback), and the
state's transitions and storage format."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.flags.snapshot import FlagSnapshot, apply_changes
from proxy.ramp.levers import (
    blocked,
    controlled,
    in_place,
    interference,
    killed,
    rollback_changes,
    step_changes,
)
from proxy.ramp.measurement import Baseline
from proxy.ramp.state import RampStateInvalid, encode_state, new_ramp, parse_state
from tests.ramp.helpers import NOW, tiny_policy

ROUTE_RAMP = tiny_policy()
GLOBAL_RAMP = tiny_policy(route=None, measure_routes=["/openai"])


def snapshot(**fields: Any) -> FlagSnapshot:
    return FlagSnapshot.model_validate(fields)


@pytest.mark.parametrize(("policy", "clear_kill", "changes"), [
    (ROUTE_RAMP, False, {"routes": {"/openai": {"shadow_percent": 100.0,
                                                "divert_percent": 50.0}}}),
    (ROUTE_RAMP, True, {"kill": False, "routes": {"/openai": {
        "shadow_percent": 100.0, "divert_percent": 50.0, "kill": None}}}),
    (GLOBAL_RAMP, False, {"shadow_percent": 100.0, "divert_percent": 50.0}),
    (GLOBAL_RAMP, True, {"shadow_percent": 100.0, "divert_percent": 50.0, "kill": False}),
])
def test_step_changes(policy: Any, clear_kill: bool, changes: dict[str, Any]) -> None:
    assert step_changes(policy, 2, clear_kill=clear_kill) == changes
    # every change is a valid flag snapshot change
    apply_changes(snapshot(kill=True), changes, version=1, actor="t", reason=None)


@pytest.mark.parametrize(("scope", "on_rollback", "changes"), [
    ("route", "kill", {"routes": {"/openai": {"shadow_percent": 0.0, "divert_percent": 0.0,
                                              "kill": True}}}),
    ("route", "zero", {"routes": {"/openai": {"shadow_percent": 0.0, "divert_percent": 0.0}}}),
    ("global", "kill", None),  # FlagWriter.rollback: kill, 0 %, route overrides removed
    ("global", "zero", {"shadow_percent": 0.0, "divert_percent": 0.0}),
])
def test_rollback_changes(scope: str, on_rollback: str, changes: dict[str, Any] | None) -> None:
    policy = ROUTE_RAMP if scope == "route" else GLOBAL_RAMP
    policy = policy.model_copy(update={"on_rollback": on_rollback})
    assert rollback_changes(policy) == changes


@pytest.mark.parametrize(("policy", "flags", "expected"), [
    (ROUTE_RAMP, {}, False),
    (ROUTE_RAMP, {"routes": {"/openai": {"shadow_percent": 5.0, "divert_percent": 0.0}}},
     True),
    # divert inherits the global value, which may change: not the step's explicit 0
    (ROUTE_RAMP, {"routes": {"/openai": {"shadow_percent": 5.0}}}, False),
    (ROUTE_RAMP, {"routes": {"/openai": {"shadow_percent": 5.0, "divert_percent": 1.0}}},
     False),
    (ROUTE_RAMP, {"shadow_percent": 5.0}, False),
    (GLOBAL_RAMP, {"shadow_percent": 5.0}, True),
    (GLOBAL_RAMP, {"shadow_percent": 25.0}, False),
])
def test_in_place(policy: Any, flags: dict[str, Any], expected: bool) -> None:
    assert in_place(snapshot(**flags), policy, 0) is expected


@pytest.mark.parametrize(("policy", "flags", "expected"), [
    (ROUTE_RAMP, {}, False),
    (ROUTE_RAMP, {"kill": True}, True),
    (ROUTE_RAMP, {"routes": {"/openai": {"kill": True}}}, True),
    (ROUTE_RAMP, {"routes": {"/anthropic": {"kill": True}}}, False),
    (GLOBAL_RAMP, {"routes": {"/openai": {"kill": True}}}, False),
    (GLOBAL_RAMP, {"kill": True}, True),
])
def test_killed(policy: Any, flags: dict[str, Any], expected: bool) -> None:
    assert killed(snapshot(**flags), policy) is expected


def test_transitions() -> None:
    base = {"/openai": Baseline(start=NOW, fields={"compared": 3})}
    started = new_ramp(tiny_policy(), source="p.json", step=0, now=NOW, actor="cli:a",
                       reason="go", baselines=base)
    assert (started.status, started.event, started.applied) == ("running", "start", False)
    applied = started.marked_applied()
    assert applied.applied and applied.event == "start" and applied.reason == "go"
    promoted = applied.promoted(now=NOW + 60, baselines={}, actor="ramp:r", reason="ok")
    assert (promoted.step, promoted.step_started_at, promoted.applied) == (1, NOW + 60, False)
    assert promoted.started_at == NOW and promoted.baselines == {}
    paused = promoted.paused(now=NOW + 70, actor="cli:b", reason="look")
    assert paused.status == "paused" and paused.active and paused.needs_runner
    resumed = paused.resumed(now=NOW + 80, actor="cli:b", reason="")
    assert resumed.status == "running" and resumed.step_started_at == NOW + 60
    rolled = resumed.rolled_back(now=NOW + 90, actor="ramp:r", reason="bad")
    assert rolled.status == "rolled_back" and not rolled.active and rolled.needs_runner
    assert not rolled.marked_applied().needs_runner
    done = resumed.marked_applied().completed(now=NOW + 99, actor="ramp:r", reason="all good")
    assert done.status == "completed" and not done.needs_runner


def test_state_round_trips_and_refuses_garbage() -> None:
    policy = tiny_policy(steps=[{"shadow_percent": 1, "min_duration_seconds": 0,
                                 "min_compared": 1, "guardrails": {"divergence": None}},
                                {"shadow_percent": 2, "min_duration_seconds": 0,
                                 "min_compared": 1}])
    state = new_ramp(policy, source="p", step=1, now=NOW, actor="a", reason="r" * 5000,
                     baselines={"/openai": Baseline(start=NOW, fields={"compared": 1.0})})
    assert len(state.reason) == 2000 and state.reason.endswith("...")
    assert parse_state(encode_state(state)) == state
    assert parse_state(encode_state(state)).policy.guardrails_for(1).divergence is not None
    with pytest.raises(RampStateInvalid, match="ramp state"):
        parse_state(b"{}")
    with pytest.raises(RampStateInvalid, match="step 5 is past the policy's 2 steps"):
        parse_state(encode_state(state).replace(b'"step":1', b'"step":5'))


def applied_at(policy: Any, flags: dict[str, Any], version: int = 3) -> Any:
    """A running ramp whose step was applied when the flags looked like `flags`."""
    state = new_ramp(policy, source="p", step=0, now=NOW, actor="cli:a", reason="",
                     baselines={})
    return state.marked_applied(controlled(snapshot(version=version, **flags), policy),
                                version)


STEP = {"routes": {"/openai": {"shadow_percent": 5.0, "divert_percent": 0.0}}}


@pytest.mark.parametrize(("change", "expected"), [
    ({}, None),  # the same version: the ramp's own write
    ({"version": 4}, None),  # a new version that touches nothing the ramp controls
    ({"version": 4, "feature_flags": {"enable_validation": False}}, None),
    ({"version": 4, "routes": {**STEP["routes"], "/anthropic": {"shadow_percent": 50.0}}},
     None),
    ({"version": 4, "kill": True, "updated_by": "cli:alice", "reason": "divergence up"},
     "the flags were changed by cli:alice (version 4: 'divergence up'): kill switch off -> on"),
    ({"version": 5, "routes": {"/openai": {"shadow_percent": 1.0, "divert_percent": 0.0}},
      "updated_by": "admin-api"},
     "the flags were changed by admin-api (version 5): shadow 5% -> 1%"),
    ({"version": 4, "routes": {}, "updated_by": "cli:bob"},
     "cli:bob (version 4): shadow 5% -> unset, divert 0% -> unset"),
    ({"version": 4, "system": {"use_orchestrator": False},
      "updated_by": "MigrationAdapter"},
     "MigrationAdapter (version 4): system.use_orchestrator on -> off"),
    ({"version": 4, "routes": {"/openai": {**STEP["routes"]["/openai"], "kill": True}}},
     "an unknown writer (version 4): route kill switch unset -> on"),
])
def test_interference_says_who_changed_what_and_why(change: dict[str, Any],
                                                     expected: str | None) -> None:
    state = applied_at(ROUTE_RAMP, STEP)
    now = snapshot(**{**STEP, "version": 3, **change})
    found = interference(state, now)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


def test_interference_only_for_a_running_applied_ramp_with_a_baseline() -> None:
    killed_now = snapshot(version=9, kill=True, **STEP)
    state = applied_at(ROUTE_RAMP, STEP)
    assert interference(state, killed_now) is not None
    assert interference(state.paused(now=NOW, actor="a", reason=""), killed_now) is None
    assert interference(state.model_copy(update={"applied": False}), killed_now) is None
    assert interference(state.model_copy(update={"flags_seen": {}}), killed_now) is None
    assert interference(state, None) is None


def test_a_config_file_rollback_interferes_too() -> None:
    state = applied_at(GLOBAL_RAMP, {"shadow_percent": 5.0})
    same = snapshot(version=3, shadow_percent=5.0)
    assert interference(state, same) is None
    found = interference(state, same, config_use_orchestrator=False, replica="pod-7")
    assert found == ("config.json of replica pod-7 sets system.use_orchestrator false "
                     "(a configuration rollback)")


@pytest.mark.parametrize(("flags", "expected"), [
    ({}, None), ({"kill": True}, "the kill switch is on"),
    ({"routes": {"/openai": {"kill": True}}}, "the kill switch is on"),
    ({"system": {"use_orchestrator": False}}, "system.use_orchestrator is false"),
])
def test_blocked(flags: dict[str, Any], expected: str | None) -> None:
    assert blocked(snapshot(**flags), ROUTE_RAMP) == expected


def test_stop_keeps_the_flags_and_ends_the_ramp() -> None:
    state = applied_at(ROUTE_RAMP, STEP).model_copy(update={"applied": False})
    stopped = state.stopped(now=NOW + 5, actor="cli:ops", reason="done")
    assert (stopped.status, stopped.event, stopped.applied) == ("stopped", "stop", True)
    assert not stopped.active and not stopped.needs_runner
    assert parse_state(encode_state(stopped)) == stopped
