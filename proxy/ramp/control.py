"""Ramp transitions shared by the operator's commands and the replica that runs the ramp:
start, pause, resume, stop, and applying a state's flags until the state stops moving.

Layer: adapter (composes `RampStore`, `RampReports` and `FlagWriter`; the decisions are
in `proxy.ramp.controller` and `proxy.ramp.state`).

Order of writes, everywhere: the state first (compare-and-set), then the flags, then
`applied`. After writing flags the writer re-reads the state; if someone made a
transition meanwhile (an operator restarting the ramp while a replica promotes), it
writes the new state's flags too, so the flags always end up following the latest
state, whoever wrote last. Marking a state applied records the flags it controls as
they were after the write (`proxy.ramp.levers.controlled`), so the runner can tell
later when someone else changed them.

`stop` ends the ramp: the state becomes `stopped` (in the history, with who and why),
the lock is deleted so no replica keeps acting on it, and the flags stay as they are
(the operator decides what traffic should do next; `llm-shadow rollback` or `set`).
`ramp start` can begin again afterwards.
"""

from __future__ import annotations

from proxy.flags.writer import FlagWriter
from proxy.ramp.levers import blocked, controlled, write_flags
from proxy.ramp.readings import RampReports
from proxy.ramp.schedule import RampPolicy
from proxy.ramp.state import RampState, RampStateInvalid, encode_state, new_ramp, parse_state
from proxy.ramp.state_store import RampStore

MAX_APPLY_ROUNDS = 3


class RampError(Exception):
    """An operator's request that cannot be done now; the message says why and what to
    do instead."""


async def apply_until_stable(store: RampStore, writer: FlagWriter, raw: bytes,
                             state: RampState, *, actor: str, token: str | None = None,
                             clear_kill: bool = False) -> bool:
    """Write `state`'s flags, then mark it applied; follow newer states (see docstring).
    False when the state could not be marked (it moved on, or the lock was lost)."""
    for _ in range(MAX_APPLY_ROUNDS):
        snapshot = await write_flags(writer, state, actor=actor, clear_kill=clear_kill)
        if snapshot is None:
            snapshot, _ = await writer.read()
        current_raw, current = await store.read()
        if current_raw == raw:
            seen = {} if snapshot is None else controlled(snapshot, state.policy)
            marked = state.marked_applied(seen, None if snapshot is None else snapshot.version)
            done = await store.write(raw, marked, token=token, history=False)
            return done == "ok"
        if current_raw is None or current is None:
            return False
        raw, state, clear_kill = current_raw, current, False
    return False


async def start_ramp(store: RampStore, reports: RampReports, writer: FlagWriter,
                     policy: RampPolicy, *, source: str, step: int, now: float,
                     actor: str, reason: str, restart: bool = False,
                     clear_kill: bool = False) -> RampState:
    """Start (or with `restart`, replace) the ramp at `step` and apply its flags now."""
    if not 0 <= step < len(policy.steps):
        raise RampError(f"the policy has steps 1 to {len(policy.steps)}, not {step + 1}")
    raw = await store.read_raw()
    current = _parsed(raw, restart)
    if current is not None and current.active and not restart:
        raise RampError(f"a ramp is already {current.status} at {current.position()}; "
                        f"`llm-shadow ramp start --restart` replaces it")
    state = new_ramp(policy, source=source, step=step, now=now, actor=actor,
                     reason=reason or f"{policy.scope} from {policy.steps[step].label}",
                     baselines=await reports.baselines(policy.routes, now))
    if await store.write(raw, state) != "ok":
        raise RampError("the ramp state changed while starting; try again")
    await apply_until_stable(store, writer, encode_state(state), state, actor=actor,
                             clear_kill=clear_kill)
    return state


async def pause_ramp(store: RampStore, *, now: float, actor: str, reason: str) -> RampState:
    raw, state = await store.read()
    if state is None or state.status != "running":
        raise RampError(f"no running ramp to pause ({_status(state)})")
    return await _write(store, raw, state.paused(now=now, actor=actor, reason=reason))


async def resume_ramp(store: RampStore, *, now: float, actor: str, reason: str,
                      writer: FlagWriter | None = None) -> RampState:
    """Running again. With `writer` (the CLI) the step's flags are applied again, since a
    person may have changed them while the ramp was paused, and the resume is refused
    while the flags keep the ramp's traffic off (kill switch, or the orchestrator
    switched off): a ramp that cannot measure anything would only hold."""
    raw, state = await store.read()
    if state is not None and state.status in ("rolled_back", "stopped"):
        raise RampError(f"the ramp was {state.status.replace('_', ' ')}; after fixing the "
                        f"cause, start it again with `llm-shadow ramp start` (add --step N "
                        f"to resume at step N)")
    if state is None or state.status != "paused":
        raise RampError(f"no paused ramp to resume ({_status(state)})")
    if writer is not None:
        snapshot, _ = await writer.read()
        why = blocked(snapshot, state.policy)
        if why:
            raise RampError(f"{why}, so the ramp would get no traffic; `llm-shadow set "
                            f"--no-kill` (or switch the orchestrator back on) first, or "
                            f"`llm-shadow ramp start --restart --clear-kill`")
    resumed = await _write(store, raw, state.resumed(now=now, actor=actor, reason=reason))
    if writer is not None:
        await apply_until_stable(store, writer, encode_state(resumed), resumed, actor=actor)
    return resumed


async def stop_ramp(store: RampStore, *, now: float, actor: str, reason: str) -> RampState:
    """End the ramp (see the module docstring); the lock is released whoever holds it."""
    raw, state = await store.read()
    if state is None or state.status not in ("running", "paused"):
        raise RampError(f"no running or paused ramp to stop ({_status(state)})")
    stopped = await _write(store, raw, state.stopped(now=now, actor=actor,
                                                     reason=reason or "stopped"))
    await store.clear_lock()
    return stopped


async def _write(store: RampStore, raw: bytes | None, state: RampState) -> RampState:
    if await store.write(raw, state) != "ok":
        raise RampError("the ramp changed meanwhile; check `llm-shadow ramp status` and "
                        "try again")
    return state


def _parsed(raw: bytes | None, restart: bool) -> RampState | None:
    if raw is None:
        return None
    try:
        return parse_state(raw)
    except RampStateInvalid as exc:
        if restart:
            return None
        raise RampError(f"the stored ramp state is invalid ({exc}); "
                        f"`llm-shadow ramp start --restart` replaces it") from None


def _status(state: RampState | None) -> str:
    return "no ramp was started" if state is None else f"the ramp is {state.status}"
