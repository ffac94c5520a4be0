"""Replica heartbeats: this replica's flag version and state, published to the store with
a short TTL, so `llm-shadow status` and `rollback --wait` can see every live replica.

Layer: adapter. One background task writes the record every `heartbeat_interval`, and
at once whenever the watcher reports a new version or state, so a rollback shows up in
`status` as soon as it is applied rather than up to one interval later. A failed write is
logged once and retried on the next beat; it never affects traffic.

Besides the version and state, a heartbeat says what the replica applies and how it is
configured (`ReplicaInfo`: its configuration file, its routes, the API key variables its
models miss), so `status` can show where a replica's configuration switches off what the
stored snapshot switches on, and `set --route --force` can check that some replica
serves a route this command's configuration does not know. Updated on every reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from proxy.background import stop
from proxy.flags.replicas import ReplicaStatus
from proxy.flags.store import FlagStore, StoreError
from proxy.flags.view import FlagView
from proxy.flags.watcher import FlagWatcher

log = logging.getLogger("llm_shadow.flags")


def default_replica_id() -> str:
    """`hostname:pid`: in Kubernetes the hostname is the pod name, so the id says which
    pod; the pid tells two processes of one host apart (the benchmark's replicas)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ReplicaInfo:
    """How a replica is configured, as its heartbeat reports it."""

    config: str | None = None
    routes: tuple[str, ...] | None = None
    missing_keys: tuple[str, ...] = ()


def status_of(view: FlagView, replica_id: str, pod: str | None, now: float,
              info: ReplicaInfo | None = None) -> ReplicaStatus:
    age = view.age(now)
    info = info or ReplicaInfo()
    return ReplicaStatus(
        replica_id=replica_id,
        pod=pod,
        version=view.version,
        state=view.state,
        source=view.source,
        age_seconds=None if age is None else round(age, 3),
        detail=view.detail,
        seen_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        config=info.config,
        routes=info.routes,
        use_orchestrator=view.snapshot.system.use_orchestrator,
        switched_off=view.switched_off(),
        missing_keys=info.missing_keys,
    )


class Heartbeat:
    def __init__(self, store: FlagStore, watcher: FlagWatcher, *, replica_id: str,
                 interval: float, ttl: float, pod: str | None = None,
                 info: ReplicaInfo | None = None):
        self.store = store
        self.watcher = watcher
        self.info = info or ReplicaInfo()
        self.replica_id = replica_id
        self.pod = pod if pod is not None else socket.gethostname()
        self.interval = interval
        self.ttl = ttl
        self.beats = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._closing = False
        watcher.add_listener(lambda view: self._wake.set())

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def aclose(self) -> None:
        # A cancel can be lost inside redis-py (see proxy.background): the loop stops on a flag too.
        self._closing = True
        if self._task is not None:
            await stop([self._task])

    async def beat(self) -> bool:
        status = status_of(self.watcher.current, self.replica_id, self.pod, time.monotonic(),
                           self.info)
        try:
            await self.store.put_status(self.replica_id, orjson.dumps(status.model_dump()),
                                        self.ttl)
        except StoreError as exc:
            if not self._failing:
                log.warning("flags: heartbeat not written: %s", exc)
            self._failing = True
            return False
        self._failing = False
        self.beats += 1
        return True

    def set_info(self, info: ReplicaInfo) -> None:
        """A reloaded configuration: reported from the next beat, which is now."""
        self.info = info
        self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self.beat()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
