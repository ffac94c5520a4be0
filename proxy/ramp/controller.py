"""The ramp decision for the current step: promote (or complete), hold (and why), pause
(a person changed its flags), or roll back.

Layer: pure core. `decide` is a function of the ramp state (which carries its policy),
the step's measurements per route and the time; it never reads Redis or the clock, so
every rule is tested by a table.

Order of the rules, first match wins:

1. a person changed the flags the ramp controls while it was running (`intervention`,
   from `proxy.ramp.levers.interference`: who, what, why) -> `pause`: the ramp yields
   to people and says why; an operator resumes or stops it;
2. a guardrail clearly breached on any measured route -> `rollback` at once, whatever
   the step's age or data count (paused or not: pausing stops promotions only);
3. paused -> `hold` (paused);
4. the kill switch is on for the ramp's scope (and was already on when the step was
   applied) -> `hold` (no traffic reaches the orchestrator, so the step cannot be
   judged);
5. the step is younger than `min_duration_seconds` -> `hold` (too_soon);
6. a measured route has fewer than `min_compared` comparisons, or a guardrail lacks
   its minimum of samples -> `hold` (insufficient_data): never promote on no data;
7. a guardrail's interval straddles its limit -> `hold` (inconclusive);
8. otherwise `promote`, or `complete` on the last step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from proxy.ramp.guardrails import Check, run_checks, z_for
from proxy.ramp.measurement import RouteMeasurement
from proxy.ramp.state import RampState, Status

Action = Literal["promote", "complete", "hold", "rollback", "pause"]
Reason = Literal["ready", "guardrail_breached", "paused", "kill_switch", "too_soon",
                 "insufficient_data", "inconclusive", "not_running", "manual_change"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    action: Action
    reason: Reason
    message: str
    status: Status
    step: int
    steps: int
    at: float
    in_step_seconds: float
    compared: tuple[tuple[str, int], ...] = ()
    checks: tuple[Check, ...] = ()

    @property
    def breaches(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict == "breach")

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "message": self.message,
                "status": self.status, "step": self.step, "steps": self.steps, "at": self.at,
                "in_step_seconds": self.in_step_seconds, "compared": dict(self.compared),
                "checks": [c.as_dict() for c in self.checks]}


def decide(state: RampState, measurements: Mapping[str, RouteMeasurement], *, now: float,
           killed: bool = False, intervention: str | None = None) -> Evaluation:
    policy = state.policy
    step = state.current
    elapsed = max(0.0, now - state.step_started_at)
    measured = [measurements.get(route) or RouteMeasurement(route) for route in policy.routes]
    checks = tuple(check for m in measured for check in run_checks(
        policy.guardrails_for(state.step), m, diverting=step.divert_percent > 0,
        z=z_for(policy.confidence)))
    compared = tuple((m.route, m.compared) for m in measured)

    def result(action: Action, reason: Reason, message: str) -> Evaluation:
        return Evaluation(action, reason, f"{state.position()}: {message}", state.status,
                          state.step, len(policy.steps), now, elapsed, compared, checks)

    if not state.active:
        return result("hold", "not_running", f"the ramp is {state.status}")
    if intervention and state.status == "running":
        return result("pause", "manual_change", f"paused: {intervention}")
    breaches = [c for c in checks if c.verdict == "breach"]
    if breaches:
        return result("rollback", "guardrail_breached",
                      "guardrail breached: " + "; ".join(c.summary for c in breaches))
    if state.status == "paused":
        return result("hold", "paused", f"paused by {state.updated_by} (guardrails still "
                                        f"watched){_why(state.reason)}")
    if killed:
        return result("hold", "kill_switch", f"the kill switch is on for {policy.scope}: "
                                             f"nothing reaches the orchestrator")
    progress = ", ".join(f"{route} {n}/{step.min_compared} compared" for route, n in compared)
    if elapsed < step.min_duration_seconds:
        return result("hold", "too_soon", f"too soon: {format_duration(elapsed)} in step, "
                                          f"minimum {format_duration(step.min_duration_seconds)}"
                                          f" ({progress})")
    if any(n < step.min_compared for _, n in compared):
        return result("hold", "insufficient_data", f"insufficient data: {progress}")
    insufficient = _with(checks, "insufficient")
    if insufficient:
        return result("hold", "insufficient_data", f"insufficient data: {insufficient}")
    inconclusive = _with(checks, "inconclusive")
    if inconclusive:
        return result("hold", "inconclusive", f"inconclusive: {inconclusive}")
    passed = f"every guardrail within its limit ({progress})"
    if state.is_last_step:
        return result("complete", "ready", f"last step held {format_duration(elapsed)}, "
                                           f"{passed}")
    following = policy.steps[state.step + 1].label
    return result("promote", "ready", f'promote to "{following}": {passed}')


def _with(checks: tuple[Check, ...], verdict: str) -> str:
    return "; ".join(c.summary for c in checks if c.verdict == verdict)


def _why(reason: str) -> str:
    return f": {reason}" if reason else ""


def format_duration(seconds: float) -> str:
    """`45s`, `4m12s`, `2h05m`: for people reading status and logs."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
