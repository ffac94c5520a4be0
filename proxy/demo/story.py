"""The demo's script: traffic on, the auto-ramp started, promotions while the orchestrator
is healthy, a regression injected at the last step, and the automatic rollback checked
end to end (the ramp's decision with its reason, the audited flag change, the flags on
this replica, shadows cancelled, no request reaching the orchestrator afterwards).

Layer: composition. The ramp is started exactly as `llm-shadow ramp start` starts it
(`proxy.ramp.control.start_ramp`: state written, first step's flags applied and
audited); from then on the runtime's own ramp runner, holding the Redis lock, decides.
The demo only watches, injects the fault, and verifies. Every wait has a deadline and
ends in `DemoFailed` with what was seen, never in a silent hang.
"""

from __future__ import annotations

import asyncio
import random
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson

from proxy.demo.client import ClientStats, Traffic
from proxy.demo.settings import LEGACY_MODEL, ROUTE
from proxy.demo.upstreams import REGRESSION_STORIES, Mode
from proxy.demo.watch import (
    HEADER,
    LEGEND,
    WIDTH,
    FlagChange,
    FlagLog,
    Levers,
    Progress,
    RampEvent,
    RampEvents,
    format_event,
    format_progress,
    paragraph,
    step_label,
    waiting,
)
from proxy.demo.world import DemoFailed, World
from proxy.ramp.autopilot import RampRunner
from proxy.ramp.control import start_ramp
from proxy.ramp.schedule import load_policy
from proxy.ramp.state import RampState
from proxy.report.aggregate_store import ReportStoreError

TICK_SECONDS = 0.25
READY_BUDGET_SECONDS = 10.0
ROLLBACK_BUDGET_SECONDS = 45.0
SETTLE_BUDGET_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Plan:
    rate: float
    regression: Mode
    seed: int
    deadline: float  # seconds from the start for the ramp to reach its last step
    inject_after: float  # seconds into the last step
    after_rollback: float  # seconds of traffic shown after the rollback


@dataclass(frozen=True, slots=True)
class Story:
    """What happened, for the results."""

    stats: ClientStats
    events: list[RampEvent]
    injected_at: float  # monotonic
    injected_wall: float
    rollback: RampEvent
    kill: FlagChange
    kill_at: float  # monotonic time this replica applied the rollback
    audit: str


class Narrator:
    """Lines on standard output, each with the seconds since the demo started."""

    def __init__(self, started: float, write: Callable[[str], None]):
        self.started = started
        self.write = write

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str = "") -> None:
        self.write(text)

    def event(self, text: str) -> None:
        lines = textwrap.wrap(text, width=WIDTH - 4, subsequent_indent=" " * 12,
                              break_long_words=False, break_on_hyphens=False)
        self.write(format_event(self.elapsed, "\n".join(lines)))


async def play(world: World, plan: Plan, narrator: Narrator) -> Story:
    runtime = world.runtime
    flag_log = FlagLog(ROUTE, runtime.shadow)
    runtime.flags.add_listener(flag_log)
    traffic = Traffic(world.proxy_url + ROUTE + "/v1", world.legacy_key, rate=plan.rate,
                      rng=random.Random(plan.seed + 2), model=LEGACY_MODEL)
    sending = asyncio.get_running_loop().create_task(traffic.run(), name="demo-client")
    try:
        await _until(lambda: runtime.flags.current.state == "ready", READY_BUDGET_SECONDS,
                     "the proxy never read its flags from the store")
        return await _ramp(world, plan, narrator, traffic, flag_log)
    finally:
        traffic.stop()
        await sending
        await traffic.drain(10.0)


async def _ramp(world: World, plan: Plan, narrator: Narrator, traffic: Traffic,
                flag_log: FlagLog) -> Story:
    runner = world.runtime.ramp
    assert runner is not None, "the runtime runs the ramp whenever it has a Redis client"
    path = world.demo.ramp_path
    state = await start_ramp(runner.store, runner.reports, runner.writer, load_policy(path),
                             source=str(path), step=0, now=time.time(), actor="demo",
                             reason="llm-shadow demo", restart=True, clear_kill=True)
    events = RampEvents(runner.store)
    paragraph(narrator.say, indent=0)(LEGEND)
    narrator.say("")
    narrator.say(HEADER)
    injected: float | None = None
    injected_wall = 0.0
    last_line = 0.0
    while True:
        await asyncio.sleep(TICK_SECONDS)
        for event in await events.new():
            narrator.event(_describe(event))
            if event.event == "rollback":
                if injected is None:
                    raise DemoFailed(f"the ramp rolled back before the regression was "
                                     f"injected: {event.reason}")
                return await _after_rollback(world, plan, narrator, traffic, flag_log, events,
                                             (injected, injected_wall), event)
            if event.event == "complete":
                raise DemoFailed("the ramp completed its last step although the "
                                 "orchestrator was broken: no guardrail caught it")
        _, current = await runner.store.read()
        state = current or state
        if injected is None and _time_to_inject(state, plan):
            world.regression.inject(plan.regression)
            injected, injected_wall = time.monotonic(), time.time()
            narrator.event(f"REGRESSION INJECTED at {state.position()}: "
                           f"{REGRESSION_STORIES[plan.regression]}")
        if time.monotonic() - last_line >= 1.0:
            last_line = time.monotonic()
            narrator.say(format_progress(await _progress(world, traffic, runner, state,
                                                         narrator.elapsed)))
        _check_deadlines(narrator.elapsed, injected, plan, state, runner)


def _time_to_inject(state: RampState, plan: Plan) -> bool:
    """At the last step, once it has run healthy for a while."""
    return (state.is_last_step and state.active and state.applied
            and time.time() - state.step_started_at >= plan.inject_after)


def _check_deadlines(elapsed: float, injected: float | None, plan: Plan, state: RampState,
                     runner: RampRunner) -> None:
    if injected is None and elapsed > plan.deadline:
        raise DemoFailed(f"the ramp did not reach its last step within {plan.deadline:.0f}s: "
                         f"it is at {state.position()} ({waiting(state, runner.last)})"
                         + (f"; latest evaluation: {runner.last.message}" if runner.last
                            else ""))
    if injected is not None and time.monotonic() - injected > ROLLBACK_BUDGET_SECONDS:
        raise DemoFailed(f"no automatic rollback within {ROLLBACK_BUDGET_SECONDS:.0f}s of the "
                         f"regression; latest evaluation: "
                         f"{runner.last.message if runner.last else 'none'}")


async def _after_rollback(world: World, plan: Plan, narrator: Narrator, traffic: Traffic,
                          flag_log: FlagLog, events: RampEvents,
                          injected: tuple[float, float], rollback: RampEvent) -> Story:
    runner = world.runtime.ramp
    assert runner is not None
    audit = await _audit_line(world)
    narrator.event(f"flags audit: {audit}")
    kill: FlagChange = await _until(lambda: flag_log.first_kill_after(rollback.at - 1.0),
                        SETTLE_BUDGET_SECONDS, "the rollback never reached this replica's flags")
    kill_at = time.monotonic()
    narrator.event(f"this replica applied flags v{kill.version} "
                   f"{max(0.0, kill.at - rollback.at) * 1000:.0f} ms after the decision: "
                   f"{kill.levers.describe()}; {kill.shadows_cancelled} shadow"
                   f"{'' if kill.shadows_cancelled == 1 else 's'} in flight cancelled")
    await _until(lambda: not world.runtime.shadow.tasks, SETTLE_BUDGET_SECONDS,
                 "shadows were still running after the rollback")
    deadline = time.monotonic() + plan.after_rollback
    _, state = await runner.store.read()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        if state is not None:
            narrator.say(format_progress(await _progress(world, traffic, runner, state,
                                                         narrator.elapsed)))
    late = traffic.stats.count(since=kill_at, by_orchestrator=True)
    if late:
        raise DemoFailed(f"{late} requests started after the rollback were still answered "
                         f"by the orchestrator")
    return Story(traffic.stats, events.all, *injected, rollback, kill, kill_at, audit)


async def _audit_line(world: World) -> str:
    """The ramp's rollback in the flags audit stream. The ramp writes its state (which
    the story watches) before the flags, so the entry may take a moment to appear."""
    runner = world.runtime.ramp
    assert runner is not None
    deadline = time.monotonic() + SETTLE_BUDGET_SECONDS
    while time.monotonic() <= deadline:
        for entry in await runner.writer.store.audit(10):
            if entry.actor.startswith("ramp:") and "rollback" in entry.reason:
                return (f"v{entry.version} written by {entry.actor} at {entry.at}, changes "
                        f"{_changes(entry.changes)}")
        await asyncio.sleep(0.02)
    raise DemoFailed("the rollback is missing from the flags audit stream")


def _changes(changes: object) -> str:
    return orjson.dumps(changes).decode()


def _describe(event: RampEvent) -> str:
    what = {"start": "ramp STARTED", "promote": "ramp PROMOTED",
            "rollback": "ramp ROLLED BACK AUTOMATICALLY", "complete": "ramp COMPLETED",
            "pause": "ramp paused", "resume": "ramp resumed"}.get(event.event, event.event)
    return f"{what} by {event.actor}: {event.reason}"


async def _progress(world: World, traffic: Traffic, runner: RampRunner, state: RampState,
                    elapsed: float) -> Progress:
    stats = traffic.stats
    summary = None
    report = world.runtime.report
    if report is not None:
        try:
            summary = await report.summary(ROUTE, time.time() - elapsed - 1.0)
        except ReportStoreError:
            summary = None
    return Progress(
        elapsed=elapsed, step=step_label(state),
        levers=Levers.of(world.runtime.flags.current, ROUTE),
        requests=stats.started, by_orchestrator=stats.count(by_orchestrator=True),
        failed=stats.count(ok=False),
        compared=summary.compared if summary else 0,
        divergence=summary.divergence_rate if summary else None,
        noise_floor=summary.noise_floor if summary else None,
        fallbacks=summary.divert_fallbacks if summary else 0,
        ramp=waiting(state, runner.last))


async def _until(condition: Callable[[], T | None], budget: float, failure: str) -> T:
    deadline = time.monotonic() + budget
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(failure)
        await asyncio.sleep(0.02)
