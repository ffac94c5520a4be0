"""The replica side of the live flags: keep an in-memory copy of the snapshot fresh, and
know how fresh it is.

Layer: adapter (drives a `FlagStore` and a `HintSource`); the request path only reads
`FlagWatcher.current`, an attribute access and one clock read, never an await.

State machine:

    start ─► not_ready ──(first read: snapshot, or key missing ⇒ config defaults)─► ready
    ready ──(no confirmed read for stale_after)─► stale  (last-known-good still applies)
    stale ──(no confirmed read for max_stale)───► failsafe (legacy only)
    any ──(invalid snapshot read)───────────────► failsafe until a valid read
    override (env LLM_SHADOW_FORCE_LEGACY=1 or flags.force_legacy_file exists) pre-empts
    everything: legacy only, with Redis gone or not.

`stale` and `failsafe` by age are computed when `current` is read, from this replica's
monotonic clock: a replica whose loop stopped updating it still fails safe on time.

Three update paths converge on `refresh()` (one at a time, so reads apply in order):
(a) a hint from pub/sub, (b) every successful (re)subscribe, which closes the window
in which hints were lost, (c) a poll every `poll_interval` (jittered down by up to 20 %,
never up), the correctness backstop. Failed reads back off exponentially with jitter up
to `reconnect_max_delay` (hints and resubscribes bypass the backoff: they prove Redis is
back).

Versions: a snapshot *read* is always applied, even with a lower version than the one
held, because the store is the source of truth (a restore, or a failover to a lagging
Redis replica); the regression is logged and counted. A *hint* whose version is
not newer than the one held while `ready` is skipped without a read, so a late or
replayed hint can never cause a regression or extra load (LaunchDarkly's ordering rule,
propagation test 8); any real regression in the store is still picked up by the poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from proxy.background import stop
from proxy.config.traffic import FlagsSection
from proxy.flags.backoff import Backoff
from proxy.flags.hints import HintSource
from proxy.flags.snapshot import FlagSnapshot, SnapshotInvalid, parse_snapshot
from proxy.flags.store import FlagStore, StoreError
from proxy.flags.view import FlagView, LocalLayer, Source, State

log = logging.getLogger("llm_shadow.flags")

Listener = Callable[[FlagView], None]


@dataclass(frozen=True)
class WatchTiming:
    poll_interval: float = 0.25
    stale_after: float = 1.5
    max_stale: float = 3.0
    reconnect_max_delay: float = 2.0

    @classmethod
    def from_config(cls, flags: FlagsSection) -> WatchTiming:
        return cls(flags.poll_interval, flags.stale_after, flags.max_stale,
                   flags.reconnect_max_delay)


class FlagWatcher:
    def __init__(
        self,
        store: FlagStore | None,
        hints: HintSource | None,
        *,
        defaults: FlagSnapshot,
        local: LocalLayer,
        timing: WatchTiming,
        override_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.hints = hints
        self.timing = timing
        self.override_file = override_file
        self.stats: Counter[str] = Counter()
        self._clock = clock
        self._defaults = defaults
        self._base = FlagView.build(defaults, local, "not_ready", "default", None,
                                    "no snapshot read yet")
        self._derived: tuple[FlagView, State, FlagView] | None = None
        self._override_file_present = False
        self._last_raw: bytes | None = None
        self._logged: tuple[State, str] = ("not_ready", "")
        self._listeners: list[Listener] = []
        self._backoff = Backoff(timing.poll_interval, timing.reconnect_max_delay)
        self._next_read = 0.0
        self._wake = asyncio.Event()
        self._wake_origin = "poll"
        self._hint_backoff_reset = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._stale_detail = (f"no confirmed read for over {timing.stale_after:g}s; "
                              f"last-known-good applies")
        self._failsafe_detail = f"no confirmed read for over {timing.max_stale:g}s; legacy only"

    # --- the request path ------------------------------------------------------------

    @property
    def current(self) -> FlagView:
        """The view to act on now; cheap enough for every request."""
        base = self._base
        override = self._override_detail()
        if override:
            return self._derive(base, "override", override)
        if base.state != "ready" or base.confirmed_at is None:
            return base
        age = self._clock() - base.confirmed_at
        if age <= self.timing.stale_after:
            return base
        if age <= self.timing.max_stale:
            return self._derive(base, "stale", self._stale_detail)
        return self._derive(base, "failsafe", self._failsafe_detail)

    def _derive(self, base: FlagView, state: State, detail: str) -> FlagView:
        cached = self._derived
        if cached is not None and cached[0] is base and cached[1] == state \
                and cached[2].detail is detail:
            return cached[2]
        view = base.with_state(state, detail)
        self._derived = (base, state, view)
        return view

    def _override_detail(self) -> str:
        if self._base.local.force_legacy:
            return "LLM_SHADOW_FORCE_LEGACY is set: legacy only"
        if self._override_file_present:
            return f"override file {self.override_file} exists: legacy only"
        return ""

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loops and return at once: start-up never waits for the
        store (the first read happens in the background, within one read budget)."""
        self._spawn(self._poll_loop(), "flags-poll")
        if self.hints is not None:
            self._spawn(self._hint_loop(), "flags-hints")

    def _spawn(self, coroutine: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coroutine, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        self._closing = True
        await stop(self._tasks)

    def add_listener(self, listener: Listener) -> None:
        """Called (synchronously) whenever the version, state or source changes."""
        self._listeners.append(listener)

    # --- configuration reload ----------------------------------------------------------

    def set_local(self, local: LocalLayer) -> None:
        self._set_base(self._base.with_local(local))

    def set_defaults(self, defaults: FlagSnapshot) -> None:
        """New config defaults; they apply at once while no stored snapshot is in use."""
        self._defaults = defaults
        base = self._base
        if base.source == "default":
            self._set_base(FlagView.build(defaults, base.local, base.state, "default",
                                          base.confirmed_at, base.detail))

    # --- update paths ------------------------------------------------------------------

    async def refresh(self, origin: str = "manual") -> bool:
        """Read the store once and apply what it holds; False when the read failed."""
        if self.store is None:
            return False
        try:
            raw = await self.store.read()
        except StoreError as exc:
            self._read_failed(exc)
            return False
        self._backoff.reset()
        self._next_read = 0.0
        self.stats["reads"] += 1
        self._apply(raw, origin)
        return True

    def _read_failed(self, exc: StoreError) -> None:
        self.stats[f"read_errors_{exc.kind}"] += 1
        delay = self._backoff.next_delay()
        self._next_read = self._clock() + delay
        if self._backoff.failures == 1:
            log.warning("flags: %s (retrying with backoff)", exc)
        if exc.kind == "auth" and self._backoff.failures == 1:
            log.error("flags: Redis rejected the credentials; check the flag user's "
                      "password/ACL (this replica fails safe after %ss)",
                      self.timing.max_stale)

    def _apply(self, raw: bytes | None, origin: str) -> None:
        now = self._clock()
        base = self._base
        if raw is None:
            self._apply_missing(now)
            return
        if raw == self._last_raw and base.state == "ready":
            self._set_base(replace(base, confirmed_at=now))
            return
        self._last_raw = raw
        try:
            snapshot = parse_snapshot(raw)
        except SnapshotInvalid as exc:
            self._apply_invalid(exc)
            return
        source: Source = self.store.kind if self.store is not None else "default"
        if snapshot.version < base.stored.version and base.source == source:
            self.stats["regressions"] += 1
            log.warning("flags: version went back from %d to %d (Redis restored or failed "
                        "over?); applying it: the store is the source of truth. Re-issue "
                        "any rollback written just before the failover.",
                        base.stored.version, snapshot.version)
        if snapshot.version != base.stored.version or base.source != source:
            self.stats[f"updates_{origin}"] += 1
            log.info("flags: version %d applied (%s, via %s)", snapshot.version,
                     _summary(snapshot), origin)
        self._set_base(FlagView.build(snapshot, base.local, "ready", source, now))

    def _apply_missing(self, now: float) -> None:
        base = self._base
        self._last_raw = None
        key = self.store.keys.flags if self.store is not None else "-"
        if base.source != "default":  # a snapshot this replica applied has gone
            self.stats["missing"] += 1
            log.warning("flags: no snapshot in the store (%s); applying config defaults "
                        "(version 0). Re-seed it with `llm-shadow set` or `rollback`.", key)
        elif base.state != "ready":  # none written yet: a fresh Redis, or a new prefix
            self.stats["missing"] += 1
            log.info("flags: no snapshot stored yet (%s): applying the config defaults "
                     "(version 0) until `llm-shadow set` or `rollback` writes one", key)
        self._set_base(FlagView.build(self._defaults, base.local, "ready", "default", now,
                                      "flags key missing: config defaults"))

    def _apply_invalid(self, exc: SnapshotInvalid) -> None:
        base = self._base
        detail = f"invalid snapshot rejected: {exc}"
        if base.detail != detail:
            self.stats["invalid"] += 1
            log.error("flags: %s; legacy only until a valid snapshot is written", exc)
        self._set_base(FlagView.build(base.stored, base.local, "failsafe", base.source,
                                      base.confirmed_at, detail))

    def _set_base(self, view: FlagView) -> None:
        previous = self._base
        self._base = view
        changed = (view.version, view.state, view.source) != \
            (previous.version, previous.state, previous.source)
        if changed:
            self._notify()

    def _notify(self) -> None:
        view = self.current
        for listener in self._listeners:
            listener(view)

    def on_hint(self, version: int | None) -> None:
        self.stats["hints"] += 1
        current = self.current
        if version is not None and current.state == "ready" and version <= current.version:
            self.stats["hints_skipped"] += 1
            return
        self._wake_with("hint")

    def on_subscribed(self) -> None:
        self.stats["subscribes"] += 1
        self._hint_backoff_reset = True
        self._wake_with("subscribe")

    def _wake_with(self, origin: str) -> None:
        self._wake_origin = origin
        self._wake.set()

    # --- background loops --------------------------------------------------------------

    async def _poll_loop(self) -> None:
        origin = "boot"
        while not self._closing:
            self._check_override_file()
            if origin != "poll" or self._clock() >= self._next_read:
                await self.refresh(origin)
            self._log_transition()
            origin = await self._next_wake()

    async def _next_wake(self) -> str:
        delay = self.timing.poll_interval * (0.8 + 0.2 * random.random())
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            return "poll"
        self._wake.clear()
        origin, self._wake_origin = self._wake_origin, "poll"
        return origin

    async def _hint_loop(self) -> None:
        assert self.hints is not None
        backoff = Backoff(self.timing.poll_interval, self.timing.reconnect_max_delay)
        while not self._closing:
            self._hint_backoff_reset = False
            try:
                await self.hints.run(self.on_subscribed, self.on_hint)
            except StoreError as exc:
                self.stats[f"subscriber_errors_{exc.kind}"] += 1
                if backoff.failures == 0:
                    log.warning("flags: hint subscriber: %s", exc)
            except Exception:
                # A bug in the pub/sub library must not end the hint loop for good:
                # the poll keeps the flags correct meanwhile, and we resubscribe.
                self.stats["subscriber_errors_bug"] += 1
                log.exception("flags: hint subscriber failed unexpectedly")
            if self._hint_backoff_reset:
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())

    def _check_override_file(self) -> None:
        if self.override_file is None:
            return
        present = os.path.exists(self.override_file)
        if present != self._override_file_present:
            self._override_file_present = present
            self._notify()

    def _log_transition(self) -> None:
        view = self.current
        key = (view.state, view.detail)
        if key[0] == self._logged[0]:
            return
        self._logged = key
        self.stats[f"transitions_{view.state}"] += 1
        level = logging.INFO if view.state == "ready" else logging.WARNING
        log.log(level, "flags: state %s (version %d, source %s)%s", view.state,
                view.version, view.source, f": {view.detail}" if view.detail else "")
        self._notify()


def _summary(snapshot: FlagSnapshot) -> str:
    kill = ", kill" if snapshot.kill else ""
    return (f"shadow {snapshot.shadow_percent:g}%, divert {snapshot.divert_percent:g}%"
            f"{kill}, by {snapshot.updated_by or '-'}")
