"""What the demo shows while it runs: one progress line a second, and a line for each
event (the ramp's transitions, the flags reaching this replica).

Layer: `Progress`, `waiting` and the `format_*` functions are pure; `FlagLog` is a flag
watcher listener; `RampEvents` reads the ramp's history stream (adapter, via
`RampStore`). The numbers come from where an operator would read them: the flags this
replica applies, the ramp's latest evaluation, and the comparison report's aggregates.

Columns: requests the client started and how many the orchestrator answered (diverted);
compared answers (shadowed, or diverted with the legacy call as their shadow); the
share of them labelled minor or major (divergence) against the same share between two
legacy answers to one request (the noise floor); divert fallbacks to legacy.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass

from proxy.flags.view import FlagView
from proxy.ramp.controller import Evaluation
from proxy.ramp.state import RampState
from proxy.ramp.state_store import RampStore
from proxy.shadow.runner import ShadowRunner


@dataclass(frozen=True, slots=True)
class Levers:
    shadow: float
    divert: float
    kill: bool

    @classmethod
    def of(cls, view: FlagView, route: str) -> Levers:
        snapshot = view.snapshot
        override = snapshot.routes.get(route)
        shadow = snapshot.shadow_percent
        divert = snapshot.divert_percent
        kill = snapshot.kill
        if override is not None:
            shadow = override.shadow_percent if override.shadow_percent is not None else shadow
            divert = override.divert_percent if override.divert_percent is not None else divert
            kill = kill or bool(override.kill)
        return cls(shadow, divert, kill or view.legacy_only)

    def describe(self) -> str:
        if self.kill:
            return "kill switch on: legacy only"
        return f"shadow {self.shadow:g}%, divert {self.divert:g}%"


@dataclass(frozen=True, slots=True)
class Progress:
    elapsed: float
    step: str  # "2/5 shadow 50%"
    levers: Levers
    requests: int
    by_orchestrator: int
    failed: int
    compared: int
    divergence: float | None
    noise_floor: float | None
    fallbacks: int
    ramp: str  # what the ramp is waiting for


WIDTH = 100
LEGEND = ("requests: started by the client; orch.: answered by the orchestrator (diverted); "
          "compared: answer pairs compared; diverg.: share of them minor or major; noise: the "
          "same share between two legacy answers to one request (every compared request gets "
          "this second legacy call here; 10 % is the production default); fallb.: diverts "
          "that fell back to legacy")
HEADER = (f"{'time':>6}  {'ramp step':<18}{'shadow':>7}{'divert':>7}{'requests':>10}"
          f"{'orch.':>7}{'compared':>10}{'diverg.':>9}{'noise':>7}{'fallb.':>8}  ramp")


def format_progress(p: Progress) -> str:
    shadow = "kill" if p.levers.kill else f"{p.levers.shadow:g}%"
    divert = "-" if p.levers.kill else f"{p.levers.divert:g}%"
    failed = f" ({p.failed} failed)" if p.failed else ""
    return (f"{p.elapsed:>5.0f}s  {p.step:<18}{shadow:>7}{divert:>7}{p.requests:>10}"
            f"{p.by_orchestrator:>7}{p.compared:>10}{_pct(p.divergence):>9}"
            f"{_pct(p.noise_floor):>7}{p.fallbacks:>8}  {p.ramp}{failed}")


def format_event(elapsed: float, text: str) -> str:
    return f"{elapsed:>5.0f}s  >> {text}"


def step_label(state: RampState | None) -> str:
    if state is None:
        return "-"
    return f"{state.step + 1}/{len(state.policy.steps)} {state.current.label}"


def waiting(state: RampState | None, evaluation: Evaluation | None) -> str:
    """What the ramp waits for, in a few words, from its latest evaluation of this step."""
    if state is None:
        return "not started"
    if not state.active:
        return state.status.replace("_", " ")
    step = state.current
    if evaluation is None or evaluation.step != state.step:
        in_step = max(0.0, time.time() - state.step_started_at)
        return f"step time {in_step:.0f}s of {step.min_duration_seconds:g}s"
    if evaluation.reason == "too_soon":
        return (f"step time {evaluation.in_step_seconds:.0f}s of "
                f"{step.min_duration_seconds:g}s")
    if evaluation.reason == "insufficient_data":
        short = [f"{n}/{step.min_compared} compared" for _, n in evaluation.compared
                 if n < step.min_compared]
        details = [c.detail for c in evaluation.checks if c.verdict == "insufficient"]
        if short or not details:
            return "collecting data: " + ", ".join(short)
        return "collecting data: " + details[0]
    if evaluation.reason == "inconclusive":
        names = sorted({c.guardrail for c in evaluation.checks
                        if c.verdict == "inconclusive"})
        return "inconclusive, more data: " + ", ".join(names)
    if evaluation.reason == "guardrail_breached":
        return "BREACHED: " + ", ".join(sorted({c.guardrail for c in evaluation.breaches}))
    return {"ready": "guardrails pass", "kill_switch": "kill switch on",
            "paused": "paused"}.get(evaluation.reason, evaluation.reason)


def paragraph(say: Callable[[str], None], *, indent: int,
              width: int = WIDTH) -> Callable[[str], None]:
    """A `say` that wraps its text, continuation lines indented by `indent`."""
    def wrapped(text: str) -> None:
        for line in textwrap.wrap(text, width=width, subsequent_indent=" " * indent,
                                  break_long_words=False, break_on_hyphens=False):
            say(line)
    return wrapped


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


# --- the flags as this replica sees them ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlagChange:
    at: float  # wall clock, when this replica applied it
    version: int
    levers: Levers
    shadows_cancelled: int  # shadows in flight that the change cancelled


class FlagLog:
    """A flag watcher listener: every version this replica applied, and how many shadows
    in flight a change cancelled. Registered after the shadow runner's own listener, so
    by the time it runs the runner has cancelled what the new flags forbid."""

    def __init__(self, route: str, shadow: ShadowRunner):
        self.route = route
        self.shadow = shadow
        self.changes: list[FlagChange] = []

    def __call__(self, view: FlagView) -> None:
        if self.changes and self.changes[-1].version == view.version:
            return
        cancelled = sum(1 for task in self.shadow.tasks if task.cancelling())
        self.changes.append(FlagChange(time.time(), view.version,
                                       Levers.of(view, self.route), cancelled))

    def first_kill_after(self, at: float) -> FlagChange | None:
        return next((c for c in self.changes if c.at >= at and c.levers.kill), None)


# --- the ramp's transitions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RampEvent:
    event: str  # start, promote, complete, rollback, pause, resume
    step: int
    label: str
    actor: str
    at: float
    reason: str


class RampEvents:
    """New entries of the ramp's history stream, oldest first."""

    def __init__(self, store: RampStore):
        self.store = store
        self.seen: set[tuple[str, str]] = set()
        self.all: list[RampEvent] = []

    async def new(self) -> list[RampEvent]:
        fresh = []
        for entry in reversed(await self.store.history(50)):
            key = (entry.get("at", ""), entry.get("event", ""))
            if key in self.seen:
                continue
            self.seen.add(key)
            fresh.append(RampEvent(entry.get("event", "?"), int(entry.get("step") or 0),
                                   entry.get("label", ""), entry.get("actor", ""),
                                   float(entry.get("at") or 0.0), entry.get("reason", "")))
        self.all += fresh
        return fresh

    def count(self, event: str) -> int:
        return sum(1 for e in self.all if e.event == event)

    def first(self, event: str) -> RampEvent | None:
        return next((e for e in self.all if e.event == event), None)
