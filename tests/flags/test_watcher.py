"""The replica state machine, driven through the in-process store (`memory://`: the
Redis store's own code on fakeredis) and a fake monotonic clock (no sleeping for
staleness). Behaviour against a real redis-server is in test_watcher_redis.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from proxy.decision import decide
from proxy.flags.audit import AuditEntry
from proxy.flags.hints import RedisHints
from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.store import Keys, RedisFlagStore, StoreError
from proxy.flags.view import FlagView, LocalLayer
from proxy.flags.watcher import FlagWatcher, WatchTiming
from proxy.flags.writer import FlagWriter
from tests.fakes.servers import async_wait_for
from tests.flags.helpers import FakeClock, run, snapshot

TIMING = WatchTiming(poll_interval=0.05, stale_after=1.0, max_stale=2.0,
                     reconnect_max_delay=0.1)
SLOW_POLL = WatchTiming(poll_interval=5.0, stale_after=20.0, max_stale=30.0)
CHAT = "/v1/chat/completions"


def memory_store() -> RedisFlagStore:
    """The flag store on this test's own in-process Redis."""
    return RedisFlagStore.from_url("memory://", "llm-shadow", connect_timeout=0.5,
                                   socket_timeout=0.5)


def hints_of(store: RedisFlagStore) -> RedisHints:
    return RedisHints("memory://", store.keys.changed, connect_timeout=0.5,
                      socket_timeout=0.5, ping_interval=0.5, watchdog=5.0)


def watcher(store: Any, clock: Callable[[], float] | None = None, timing: WatchTiming = TIMING,
            **kwargs: Any) -> FlagWatcher:
    hints = hints_of(store) if isinstance(store, RedisFlagStore) else None
    return FlagWatcher(store, hints, defaults=kwargs.pop("defaults", FlagSnapshot()),
                       local=kwargs.pop("local", LocalLayer()), timing=timing,
                       clock=clock or FakeClock(), **kwargs)


async def put(store: RedisFlagStore, **fields: Any) -> None:
    """Put a snapshot in the store as it is, bypassing the writer's validation."""
    raw = await store.read()
    await store.compare_and_set(raw, orjson.dumps(fields), AuditEntry(
        "", int(fields.get("version", 0)), None, "test", "", "", {}))


def test_cold_start_is_not_ready_and_legacy_only() -> None:
    flags = watcher(memory_store())
    view = flags.current
    assert (view.state, view.source, view.version, view.age(0)) == \
        ("not_ready", "default", 0, None)
    assert decide(view, "/openai", CHAT, "k", (CHAT,)).reason == "not_ready"


def test_missing_key_applies_config_defaults() -> None:
    async def scenario() -> FlagView:
        flags = watcher(memory_store(), defaults=snapshot(shadow_percent=3))
        assert await flags.refresh()
        return flags.current

    view = run(scenario())
    assert (view.state, view.source, view.snapshot.shadow_percent) == ("ready", "default", 3)
    assert "missing" in view.detail


def test_ready_then_stale_then_failsafe_by_the_monotonic_clock() -> None:
    clock = FakeClock()
    store = memory_store()

    async def scenario() -> list[str]:
        flags = watcher(store, clock)
        await FlagWriter(store).update({"shadow_percent": 100}, actor="t")
        await flags.refresh()
        states = [flags.current.state]
        clock.advance(1.01)
        states.append(flags.current.state)
        assert decide(flags.current, "/o", CHAT, "k", (CHAT,)).action == "shadow"
        clock.advance(1.0)
        states.append(flags.current.state)
        assert decide(flags.current, "/o", CHAT, "k", (CHAT,)).reason == "failsafe"
        await flags.refresh()
        states.append(flags.current.state)
        return states

    assert run(scenario()) == ["ready", "stale", "failsafe", "ready"]


def test_invalid_snapshot_goes_failsafe_until_a_valid_one() -> None:
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store)
        await FlagWriter(store).update({"divert_percent": 10}, actor="t")
        await flags.refresh()
        await put(store, version=2, shadow_percent=150)
        await flags.refresh()
        assert flags.current.state == "failsafe"
        assert "shadow_percent" in flags.current.detail
        assert flags.current.version == 1  # the last good one is kept, for the record
        await flags.refresh()  # the same bad bytes again: still fail-safe, counted once
        assert flags.current.state == "failsafe" and flags.stats["invalid"] == 1
        await FlagWriter(store).rollback(actor="t")
        await flags.refresh()
        assert (flags.current.state, flags.current.version) == ("ready", 3)

    run(scenario())


def test_a_version_regression_read_from_the_store_is_applied_and_counted() -> None:
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store)
        await put(store, version=5, shadow_percent=5)
        await flags.refresh()
        await put(store, version=3, shadow_percent=3)
        await flags.refresh()
        assert (flags.current.version, flags.current.snapshot.shadow_percent) == (3, 3)
        assert flags.stats["regressions"] == 1

    run(scenario())


def test_a_hint_not_newer_than_the_current_version_causes_no_read() -> None:
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store, timing=SLOW_POLL)
        await put(store, version=3, kill=True)
        await flags.start()
        await async_wait_for(lambda: flags.current.version == 3, message="version 3")
        # The store goes back to version 2 behind the replica's back, and a stale hint
        # for version 2 arrives: no re-read, no regression (propagation test 8).
        await store.client.set(store.keys.flags, orjson.dumps({"version": 2}))
        reads = flags.stats["reads"]
        flags.on_hint(2)
        flags.on_hint(3)
        await asyncio.sleep(0.1)  # a "never" check: nothing may happen in this window
        assert flags.current.version == 3 and flags.current.snapshot.kill
        assert flags.stats["reads"] == reads and flags.stats["hints_skipped"] == 2
        flags.on_hint(None)  # an unreadable hint still triggers a read
        await async_wait_for(lambda: flags.current.version == 2, message="re-read")
        await flags.aclose()

    run(scenario())


def test_hints_bring_new_versions_without_waiting_for_the_poll() -> None:
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store, timing=SLOW_POLL)
        await flags.start()
        await async_wait_for(lambda: flags.current.state == "ready", message="ready")
        snapshot = await FlagWriter(store).update({"divert_percent": 20}, actor="t")
        await async_wait_for(lambda: flags.current.version == snapshot.version,
                             message="hinted version")
        assert flags.stats["updates_hint"] == 1
        await flags.aclose()

    run(scenario())


def test_env_override_pre_empts_everything() -> None:
    flags = watcher(memory_store(), local=LocalLayer(force_legacy=True))
    assert flags.current.state == "override"
    assert "LLM_SHADOW_FORCE_LEGACY" in flags.current.detail
    assert decide(flags.current, "/o", CHAT, "k", (CHAT,)).reason == "override"


def test_override_file_switches_legacy_only_on_and_off(tmp_path: Path) -> None:
    marker = tmp_path / "force-legacy"
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store, override_file=marker)
        await FlagWriter(store).update({"divert_percent": 100}, actor="t")
        await flags.start()
        await async_wait_for(lambda: flags.current.state == "ready", message="ready")
        marker.write_text("incident 42\n")
        await async_wait_for(lambda: flags.current.state == "override", message="override")
        assert decide(flags.current, "/o", CHAT, "k", (CHAT,)).action == "legacy"
        marker.unlink()
        await async_wait_for(lambda: flags.current.state == "ready", message="ready again")
        await flags.aclose()

    run(scenario())


def test_local_layer_and_defaults_apply_at_once() -> None:
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store)
        await flags.refresh()
        flags.set_defaults(snapshot(shadow_percent=9))
        assert flags.current.snapshot.shadow_percent == 9
        flags.set_local(LocalLayer(use_orchestrator=False))
        assert flags.current.snapshot.system.use_orchestrator is False
        assert flags.current.stored.system.use_orchestrator is True

    run(scenario())


def test_listeners_hear_version_and_state_changes() -> None:
    store = memory_store()
    seen: list[tuple[int, str]] = []

    async def scenario() -> None:
        flags = watcher(store)
        flags.add_listener(lambda view: seen.append((view.version, view.state)))
        await flags.refresh()
        await FlagWriter(store).update({"kill": True}, actor="t")
        await flags.refresh()
        await flags.refresh()

    run(scenario())
    assert seen == [(0, "ready"), (1, "ready")]


class _FailingStore:
    kind = "redis"
    keys = Keys("t")

    def __init__(self, kind: str = "connection"):
        self.error_kind = kind
        self.reads = 0

    async def read(self) -> bytes | None:
        self.reads += 1
        raise StoreError(self.error_kind, "down")  # type: ignore[arg-type]


class _HangingStore(_FailingStore):
    async def read(self) -> bytes | None:
        await asyncio.Event().wait()
        return None


def test_start_returns_at_once_even_when_the_store_hangs() -> None:
    async def scenario() -> None:
        flags = watcher(_HangingStore())
        await asyncio.wait_for(flags.start(), timeout=5)
        assert flags.current.state == "not_ready"
        await flags.aclose()

    run(scenario())


def test_read_failures_back_off_and_are_counted_by_kind() -> None:
    store = _FailingStore("auth")

    async def scenario() -> None:
        flags = watcher(store, clock=time.monotonic)
        await flags.start()
        await async_wait_for(lambda: store.reads >= 3, message="retries")
        await flags.aclose()
        assert flags.stats["read_errors_auth"] == store.reads
        assert flags.current.state == "not_ready"

    run(scenario())


def test_row16_writer_clock_skew_does_not_matter() -> None:
    """Staleness is this replica's monotonic clock; updated_at is only informative."""
    store = memory_store()

    async def scenario() -> None:
        flags = watcher(store)
        for when in ("1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z"):
            await put(store, version=1 if when < "2" else 2, updated_at=when)
            await flags.refresh()
            assert flags.current.state == "ready"

    run(scenario())
