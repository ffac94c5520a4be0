"""The ramp decision, by table: promote, hold with its reason, or roll back with the
breached guardrail and its numbers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from proxy.ramp.controller import decide, format_duration
from proxy.ramp.measurement import RouteMeasurement
from proxy.ramp.schedule import RampPolicy
from proxy.ramp.state import RampState, new_ramp
from proxy.report.entry import latency_bin
from tests.ramp.helpers import NOW, ROUTE, tiny_policy

N = 40


def healthy(route: str = ROUTE, *, diverting: bool = False, **changes: Any) -> RouteMeasurement:
    m = RouteMeasurement(route, compared=N, noise_samples=N, orchestrator_requests=N,
                         latency=((latency_bin(200), N),), orchestrator_usd=0.002 * N,
                         orchestrator_cost_requests=N, orchestrator_calls=N,
                         divert_requests=N if diverting else 0)
    return replace(m, **changes)


def ramp(step: int = 0, status: str = "running", policy: RampPolicy | None = None) -> RampState:
    state = new_ramp(policy or tiny_policy(), source="t", step=step, now=NOW, actor="cli:t",
                     reason="", baselines={})
    return state.model_copy(update={"status": status, "applied": True})


WRONG: dict[str, Any] = {"divergent": N, "major": N}
CASES: list[tuple[str, dict[str, Any], float, bool, tuple[str, str, str]]] = [
    # name, measurement changes (None: no data), seconds in step, killed -> expected
    ("no data, too soon", {"none": True}, 0, False, ("hold", "too_soon", "0s in step")),
    ("no data, old enough", {"none": True}, 61, False,
     ("hold", "insufficient_data", "/openai 0/30 compared")),
    ("healthy, too soon", {}, 10, False, ("hold", "too_soon", "minimum 1m00s")),
    ("healthy", {}, 61, False, ("promote", "ready", 'promote to "shadow 100%"')),
    ("one comparison short", {"compared": 29}, 61, False,
     ("hold", "insufficient_data", "29/30 compared")),
    ("noise floor not sampled enough", {"noise_samples": 10}, 61, False,
     ("hold", "insufficient_data", "10 noise samples; needs 30")),
    ("errors straddle the limit", {"orchestrator_errors": 6}, 61, False,
     ("hold", "inconclusive", "orchestrator errors 6/40")),
    ("wrong answers, even too soon", WRONG, 0, False,
     ("rollback", "guardrail_breached", "/openai divergence: minor+major 100.0%")),
    ("errors", {"orchestrator_errors": 20}, 61, False,
     ("rollback", "guardrail_breached", "/openai error_rate: orchestrator errors 20/40")),
    ("latency", {"latency": ((latency_bin(10_000), N),)}, 5, False,
     ("rollback", "guardrail_breached", "/openai latency_p95: latency delta p95 +10624 ms")),
    ("cost", {"orchestrator_usd": 0.05 * N}, 61, False,
     ("rollback", "guardrail_breached", "/openai cost_per_request: orchestrator $0.050000")),
    ("kill switch on", {}, 61, True, ("hold", "kill_switch", "kill switch is on for /openai")),
    ("kill switch on and a breach", WRONG, 61, True, ("rollback", "guardrail_breached", "")),
]


@pytest.mark.parametrize(("name", "changes", "elapsed", "killed", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_decide(name: str, changes: dict[str, Any], elapsed: float, killed: bool,
                expected: tuple[str, str, str]) -> None:
    measurements = {} if changes.get("none") else {ROUTE: healthy(**changes)}
    evaluation = decide(ramp(), measurements, now=NOW + elapsed, killed=killed)
    action, reason, fragment = expected
    assert (evaluation.action, evaluation.reason) == (action, reason)
    assert fragment in evaluation.message
    assert evaluation.message.startswith('step 1/3 "shadow 5%": ')
    if action == "rollback":
        assert evaluation.breaches and all(c.verdict == "breach" for c in evaluation.breaches)


def test_the_last_step_completes_and_needs_divert_data() -> None:
    last = ramp(step=2)
    held = decide(last, {ROUTE: healthy()}, now=NOW + 61)
    assert (held.action, held.reason) == ("hold", "insufficient_data")
    assert "divert fallbacks: 0 requests, needs 30" in held.message
    done = decide(last, {ROUTE: healthy(diverting=True)}, now=NOW + 61)
    assert (done.action, done.reason) == ("complete", "ready")
    failing = decide(last, {ROUTE: healthy(diverting=True, divert_fallbacks=N)}, now=NOW + 61)
    assert failing.action == "rollback" and "fallback_rate" in failing.message


def test_paused_holds_but_still_rolls_back() -> None:
    paused = ramp(status="paused")
    held = decide(paused, {ROUTE: healthy()}, now=NOW + 61)
    assert (held.action, held.reason) == ("hold", "paused")
    assert "guardrails still watched" in held.message
    assert decide(paused, {ROUTE: healthy(**WRONG)}, now=NOW).action == "rollback"


@pytest.mark.parametrize("status", ["rolled_back", "completed"])
def test_a_finished_ramp_does_nothing(status: str) -> None:
    evaluation = decide(ramp(status=status), {ROUTE: healthy(**WRONG)}, now=NOW + 61)
    assert (evaluation.action, evaluation.reason) == ("hold", "not_running")


def test_never_promotes_on_no_data_even_without_guardrails() -> None:
    off = {name: None for name in ("divergence", "error_rate", "fallback_rate")}
    policy = tiny_policy(guardrails=off)
    evaluation = decide(ramp(policy=policy), {}, now=NOW + 10_000)
    assert (evaluation.action, evaluation.reason) == ("hold", "insufficient_data")
    assert evaluation.checks == ()
    promoted = decide(ramp(policy=policy), {ROUTE: RouteMeasurement(ROUTE, compared=30)},
                      now=NOW + 61)
    assert promoted.action == "promote"


def test_a_global_ramp_needs_every_measured_route() -> None:
    policy = tiny_policy(route=None, measure_routes=["/openai", "/anthropic"])
    state = ramp(policy=policy)
    one = decide(state, {"/openai": healthy("/openai")}, now=NOW + 61)
    assert one.action == "hold" and "/anthropic 0/30 compared" in one.message
    both = {route: healthy(route) for route in policy.routes}
    assert decide(state, both, now=NOW + 61).action == "promote"
    both["/anthropic"] = healthy("/anthropic", orchestrator_errors=N)
    broken = decide(state, both, now=NOW + 61)
    assert broken.action == "rollback"
    assert [c.route for c in broken.breaches] == ["/anthropic"]


def test_evaluation_as_dict_carries_the_numbers() -> None:
    data = decide(ramp(), {ROUTE: healthy(**WRONG)}, now=NOW + 3).as_dict()
    assert data["action"] == "rollback" and data["compared"] == {ROUTE: N}
    assert data["in_step_seconds"] == 3 and data["steps"] == 3
    divergence = next(c for c in data["checks"] if c["guardrail"] == "divergence")
    assert divergence["verdict"] == "breach" and divergence["value"] == 1.0


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59.9, "59s"), (60, "1m00s"), (252, "4m12s"), (3600, "1h00m"),
    (7500, "2h05m"), (-5, "0s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("status", "measured", "expected"), [
    ("running", {}, ("pause", "manual_change")),
    ("running", WRONG, ("pause", "manual_change")),  # people first; paused, guards still watch
    ("paused", WRONG, ("rollback", "guardrail_breached")),
    ("paused", {}, ("hold", "paused")),
])
def test_a_person_changing_the_flags_pauses_a_running_ramp(
        status: str, measured: dict[str, Any], expected: tuple[str, str]) -> None:
    why = "the flags were changed by cli:alice (version 9: 'incident'): kill switch off -> on"
    evaluation = decide(ramp(status=status), {ROUTE: healthy(**measured)}, now=NOW + 61,
                        killed=True, intervention=why)
    assert (evaluation.action, evaluation.reason) == expected
    if evaluation.action == "pause":
        assert evaluation.message.endswith(f"paused: {why}")
