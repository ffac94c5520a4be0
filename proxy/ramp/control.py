"""Ramp transitions shared by the operator's commands and the replica that runs the ramp:
start, pause, resume, and applying a state's flags until the state stops moving.

Layer: adapter (composes `RampStore`, `RampReports` and `FlagWriter`; the decisions are
in `proxy.ramp.controller` and `proxy.ramp.state`).

Order of writes, everywhere: the state first (compare-and-set), then the flags, then
`applied`. After writing flags the writer re-reads the state; if someone made a
transition meanwhile (an operator restarting the ramp while a replica promotes), it
writes the new state's flags too, so the flags always end up following the latest
state, whoever wrote last.
"""

from __future__ import annotations

from proxy.flags.writer import FlagWriter
from proxy.ramp.levers import write_flags
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
        await write_flags(writer, state, actor=actor, clear_kill=clear_kill)
        current_raw, current = await store.read()
        if current_raw == raw:
            done = await store.write(raw, state.marked_applied(), token=token,
                                     history=False)
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


async def resume_ramp(store: RampStore, *, now: float, actor: str, reason: str) -> RampState:
    raw, state = await store.read()
    if state is not None and state.status == "rolled_back":
        raise RampError("the ramp was rolled back; after fixing the cause, start it again "
                        "with `llm-shadow ramp start` (add --step N to resume at step N)")
    if state is None or state.status != "paused":
        raise RampError(f"no paused ramp to resume ({_status(state)})")
    return await _write(store, raw, state.resumed(now=now, actor=actor, reason=reason))


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
