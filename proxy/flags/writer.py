"""Writing flags: validated changes, atomic replace, audit entry and hint in one step.

Layer: adapter. Every writer goes through `FlagWriter`: the CLI (`llm-shadow set`,
`rollback`), the admin API (`PUT /flags`, `POST /rollback`) and the guide's
`MigrationAdapter.update_config` / `toggle_orchestrator` (via the sync functions below).

A write reads the stored snapshot, deep-merges the change, validates the result *before*
anything is written (an invalid change never reaches a replica), and commits with a
compare-and-set: if another operator wrote in between, the change is re-applied on top of
theirs (at most `MAX_ATTEMPTS` times). Concurrent writers therefore both land, in a
deterministic order, and the audit stream records both.

Rollback writes `kill: true` with both percentages at 0 and every route override
removed: legacy only on every replica, even for someone who later clears `kill` alone.
Resuming is an explicit `llm-shadow set --no-kill --shadow ... --divert ...`. A rollback
always succeeds over a stored snapshot that is invalid (it starts from the config
defaults); an ordinary update refuses to, unless `replace_invalid=True`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from proxy.config.proxy import RedisSection
from proxy.flags.audit import AuditEntry
from proxy.flags.snapshot import (
    FlagSnapshot,
    SnapshotInvalid,
    apply_changes,
    encode_snapshot,
    parse_snapshot,
)
from proxy.flags.store import FlagStore, RedisFlagStore, StoreError
from proxy.redisclient import Client

log = logging.getLogger("llm_shadow.flags")

MAX_ATTEMPTS = 5
# Writers are operator tools, not the request path: more patient than replicas.
WRITER_CONNECT_TIMEOUT = 1.0
WRITER_SOCKET_TIMEOUT = 2.0

T = TypeVar("T")


class WriteConflict(StoreError):
    """Other writers kept changing the snapshot between our read and our write."""

    def __init__(self, attempts: int):
        super().__init__("error", f"the flag snapshot changed under {attempts} attempts "
                                  f"in a row; try again")


Target = Client | FlagStore | RedisSection | str


class FlagWriter:
    def __init__(self, redis: Target, prefix: str | None = None, *,
                 defaults: FlagSnapshot | None = None):
        """`redis` is the `redis` section of a configuration (any topology; its
        keyspace wins over `prefix`), a single node's URL, a client (keys under `prefix`,
        which in cluster mode must be the keyspace with its hash tag), or any
        `FlagStore`. `defaults` (from config.json) is the base when the store holds no
        snapshot."""
        self.store: FlagStore = _as_store(redis, prefix or "llm-shadow")
        self.defaults = defaults or FlagSnapshot.model_validate({})
        self._owns_store = isinstance(redis, RedisSection | str)

    async def read(self) -> tuple[FlagSnapshot | None, str | None]:
        """The stored snapshot (None when missing) and why it is unusable, if it is."""
        raw = await self.store.read()
        if raw is None:
            return None, None
        try:
            return parse_snapshot(raw), None
        except SnapshotInvalid as exc:
            return None, str(exc)

    async def update(self, changes: Mapping[str, Any], *, actor: str,
                     reason: str | None = None, replace_invalid: bool = False
                     ) -> FlagSnapshot:
        """Apply a partial change; raise `SnapshotInvalid` if the result would be
        invalid (nothing is written), `StoreError` if the store is unreachable."""
        for _ in range(MAX_ATTEMPTS):
            raw = await self.store.read()
            base = self._base(raw, replace_invalid)
            snapshot = apply_changes(base, changes, version=base.version + 1, actor=actor,
                                     reason=reason)
            entry = _entry(snapshot, None if raw is None else base.version, changes)
            if await self.store.compare_and_set(raw, encode_snapshot(snapshot), entry):
                log.info("flags: version %d written by %s", snapshot.version, actor)
                return snapshot
        raise WriteConflict(MAX_ATTEMPTS)

    async def rollback(self, *, actor: str, reason: str | None = None) -> FlagSnapshot:
        """Legacy only everywhere: kill on, percentages 0, route overrides removed."""
        raw = await self.store.read()
        base = self._base(raw, replace_invalid=True)
        changes: dict[str, Any] = {"kill": True, "shadow_percent": 0.0, "divert_percent": 0.0,
                                   "routes": dict.fromkeys(base.routes)}
        return await self.update(changes, actor=actor, reason=reason or "rollback",
                                 replace_invalid=True)

    async def aclose(self) -> None:
        if self._owns_store:
            await self.store.aclose()

    def _base(self, raw: bytes | None, replace_invalid: bool) -> FlagSnapshot:
        if raw is None:
            return self.defaults
        try:
            return parse_snapshot(raw)
        except SnapshotInvalid as exc:
            if not replace_invalid:
                raise SnapshotInvalid(f"the stored snapshot is invalid ({exc}); "
                                      f"`llm-shadow rollback` replaces it") from None
            log.warning("flags: replacing an invalid stored snapshot: %s", exc)
            return self.defaults.model_copy(update={"version": _stored_version(raw)})


def _as_store(redis: Target, prefix: str) -> FlagStore:
    if isinstance(redis, str):
        redis = RedisSection(url=redis, key_prefix=prefix)
    if isinstance(redis, RedisSection):
        return RedisFlagStore.from_config(redis, connect_timeout=WRITER_CONNECT_TIMEOUT,
                                          socket_timeout=WRITER_SOCKET_TIMEOUT)
    if isinstance(redis, Client):
        return RedisFlagStore(redis, prefix,
                              budget=WRITER_CONNECT_TIMEOUT + WRITER_SOCKET_TIMEOUT)
    return redis


def _entry(snapshot: FlagSnapshot, previous: int | None,
           changes: Mapping[str, Any]) -> AuditEntry:
    at = snapshot.updated_at or datetime.now(UTC)
    return AuditEntry(
        entry_id="",
        version=snapshot.version,
        previous_version=previous,
        actor=snapshot.updated_by or "",
        reason=snapshot.reason or "",
        at=at.isoformat().replace("+00:00", "Z"),
        changes=orjson.loads(orjson.dumps(changes)),
    )


def _stored_version(raw: bytes) -> int:
    """The version of an invalid snapshot, when one can be read, so versions keep
    increasing across the repair (replicas skip hints that are not newer)."""
    try:
        version = orjson.loads(raw).get("version")
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return version if isinstance(version, int) and version >= 0 else 0


# --- sync API for MigrationAdapter ---------------------------------------------------


def update_flags_sync(redis: RedisSection | str, prefix: str | None,
                      changes: Mapping[str, Any], *, actor: str, reason: str | None = None,
                      defaults: FlagSnapshot | None = None) -> FlagSnapshot:
    """`FlagWriter.update` for synchronous callers, also from inside a running loop.
    `redis` is the configuration's `redis` section or a single node's URL (with
    `prefix`)."""
    return _run_sync(lambda writer: writer.update(changes, actor=actor, reason=reason),
                     redis, prefix, defaults)


def rollback_sync(redis: RedisSection | str, prefix: str | None, *, actor: str,
                  reason: str | None = None,
                  defaults: FlagSnapshot | None = None) -> FlagSnapshot:
    """`FlagWriter.rollback` for synchronous callers."""
    return _run_sync(lambda writer: writer.rollback(actor=actor, reason=reason),
                     redis, prefix, defaults)


def _run_sync(action: Callable[[FlagWriter], Awaitable[T]], redis: RedisSection | str,
              prefix: str | None, defaults: FlagSnapshot | None) -> T:
    async def run() -> T:
        writer = FlagWriter(redis, prefix, defaults=defaults)
        try:
            return await action(writer)
        finally:
            await writer.aclose()

    # A private thread with its own loop: works whether or not the caller's thread
    # already runs an event loop (asyncio.run would refuse inside one).
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flags-writer") as pool:
        return pool.submit(asyncio.run, run()).result()
