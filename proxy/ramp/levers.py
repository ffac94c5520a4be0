"""From a ramp state to the flag snapshot: which changes a step or a rollback writes,
writing them through the flags writer (so every change lands in the audit stream), and
noticing when a person changed them.

Layer: `step_changes`, `rollback_changes`, `in_place`, `killed`, `controlled`,
`interference` and `blocked` are pure; `write_flags` is the one place the ramp writes
flags (adapter, via `FlagWriter`).

The ramp yields to people. After applying a step it records what the flags it depends
on looked like (`controlled`: its percentages, the global and its route's kill switch,
`system.use_orchestrator`, `migration_mode`) and the snapshot version. A later snapshot
version whose controlled flags differ was written by someone else (a `set`, a
`rollback`, the admin API, `MigrationAdapter`, a hand-edited key: the writer does not
matter), and `interference` says who (the snapshot's `updated_by`), what (each
difference) and why (its `reason`); the runner then pauses the ramp. A change to
anything else (another route, a feature flag) does not. The replica's own
`config.json` switching the orchestrator off (a config-file rollback) counts too.

A route ramp writes that route's override (`routes./openai.shadow_percent` and
`divert_percent`); a global ramp writes the global percentages. Rollback, per the
policy's `on_rollback`:

- "kill", global ramp: `FlagWriter.rollback` (kill on, both percentages 0, every route
  override removed: legacy only everywhere);
- "kill", route ramp: that route's override becomes kill on with percentages 0 (other
  routes untouched);
- "zero": the ramp's percentages (global or the route's) go to 0; kill untouched.

The audit entry's actor is `ramp:<replica id>` (or the operator, for `ramp start`) and
its reason says which transition and why, with the numbers for a rollback.
"""

from __future__ import annotations

from typing import Any

from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.writer import FlagWriter
from proxy.ramp.schedule import RampPolicy
from proxy.ramp.state import RampState, clip

AUDIT_REASON_MAX = 500  # FlagSnapshot.reason's bound


def step_changes(policy: RampPolicy, index: int, *, clear_kill: bool = False
                 ) -> dict[str, Any]:
    step = policy.steps[index]
    levers: dict[str, Any] = {"shadow_percent": step.shadow_percent,
                              "divert_percent": step.divert_percent}
    if policy.route is None:
        return {**levers, "kill": False} if clear_kill else levers
    if clear_kill:
        return {"kill": False, "routes": {policy.route: {**levers, "kill": None}}}
    return {"routes": {policy.route: levers}}


def rollback_changes(policy: RampPolicy) -> dict[str, Any] | None:
    """The safe state's changes; None means the writer's full rollback (global kill)."""
    zero: dict[str, Any] = {"shadow_percent": 0.0, "divert_percent": 0.0}
    if policy.route is None:
        return None if policy.on_rollback == "kill" else zero
    if policy.on_rollback == "kill":
        zero["kill"] = True
    return {"routes": {policy.route: zero}}


def in_place(snapshot: FlagSnapshot, policy: RampPolicy, index: int) -> bool:
    """Whether the snapshot already carries the step's percentages (nothing to write)."""
    step = policy.steps[index]
    if policy.route is None:
        levers: Any = snapshot
    else:
        levers = snapshot.routes.get(policy.route)
        if levers is None:
            return False
    return bool(levers.shadow_percent == step.shadow_percent
                and levers.divert_percent == step.divert_percent)


def killed(snapshot: FlagSnapshot, policy: RampPolicy) -> bool:
    """Whether the kill switch stops the ramp's traffic (global, or the route's own)."""
    if snapshot.kill:
        return True
    route = snapshot.routes.get(policy.route) if policy.route else None
    return bool(route is not None and route.kill)


def controlled(snapshot: FlagSnapshot, policy: RampPolicy) -> dict[str, Any]:
    """The flags a ramp depends on, as plain data (stored with the ramp state)."""
    route = snapshot.routes.get(policy.route) if policy.route else None
    levers: Any = snapshot if policy.route is None else route
    return {
        "shadow_percent": None if levers is None else levers.shadow_percent,
        "divert_percent": None if levers is None else levers.divert_percent,
        "kill": snapshot.kill,
        "route_kill": None if route is None else route.kill,
        "use_orchestrator": snapshot.system.use_orchestrator,
        "migration_mode": snapshot.system.migration_mode,
    }


_SHOWN = {"shadow_percent": "shadow", "divert_percent": "divert", "kill": "kill switch",
          "route_kill": "route kill switch", "use_orchestrator": "system.use_orchestrator",
          "migration_mode": "migration_mode"}


def interference(state: RampState, snapshot: FlagSnapshot | None, *,
                 config_use_orchestrator: bool = True, replica: str = "") -> str | None:
    """Why a running ramp must yield (who changed what, and why), or None."""
    if state.status != "running" or not state.applied:
        return None
    if not config_use_orchestrator:
        return (f"config.json of replica {replica or '?'} sets system.use_orchestrator "
                f"false (a configuration rollback)")
    if snapshot is None or not state.flags_seen or snapshot.version == state.flags_version:
        return None
    now = controlled(snapshot, state.policy)
    changes = [_change(name, state.flags_seen.get(name), value)
               for name, value in now.items() if state.flags_seen.get(name) != value]
    if not changes:
        return None
    why = f": {snapshot.reason!r}" if snapshot.reason else ""
    return (f"the flags were changed by {snapshot.updated_by or 'an unknown writer'} "
            f"(version {snapshot.version}{why}): {', '.join(changes)}")


def _change(name: str, before: Any, after: Any) -> str:
    label = _SHOWN.get(name, name)
    if isinstance(after, bool) or isinstance(before, bool):
        return f"{label} {_on(before)} -> {_on(after)}"
    if name.endswith("_percent"):
        return f"{label} {_percent(before)} -> {_percent(after)}"
    return f"{label} {before} -> {after}"


def _on(value: Any) -> str:
    return "unset" if value is None else ("on" if value else "off")


def _percent(value: Any) -> str:
    return "unset" if value is None else f"{value:g}%"


def blocked(snapshot: FlagSnapshot | None, policy: RampPolicy) -> str | None:
    """What keeps a resumed ramp from getting traffic, or None."""
    if snapshot is None:
        return None
    if killed(snapshot, policy):
        return "the kill switch is on"
    if not snapshot.system.use_orchestrator:
        return "system.use_orchestrator is false"
    return None


def audit_reason(state: RampState) -> str:
    return clip(f"ramp {state.event}: {state.reason}", AUDIT_REASON_MAX)


async def write_flags(writer: FlagWriter, state: RampState, *, actor: str,
                      clear_kill: bool = False) -> FlagSnapshot | None:
    """Write the flags `state` calls for; None when they were already in place.

    A rollback is always written (its reason belongs in the audit stream even when an
    operator already turned traffic off); a step only when the snapshot differs.
    """
    reason = audit_reason(state)
    policy = state.policy
    if state.status == "stopped":
        return None  # a stop leaves the flags as they are
    if state.status == "rolled_back":
        changes = rollback_changes(policy)
        if changes is None:
            return await writer.rollback(actor=actor, reason=reason)
        return await writer.update(changes, actor=actor, reason=reason, replace_invalid=True)
    current, _ = await writer.read()
    if current is not None and not clear_kill and in_place(current, policy, state.step):
        return None
    return await writer.update(step_changes(policy, state.step, clear_kill=clear_kill),
                               actor=actor, reason=reason)
