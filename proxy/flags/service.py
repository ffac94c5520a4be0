"""Everything the live flags need in one sidecar process, created and closed together.

Layer: composition. `Runtime` owns one `FlagService`; the request path reads
`service.watcher.current` (see `proxy.decision.decide`) and counts decisions in
`service.counters`; the admin API writes through `service.writer`; a config reload calls
`apply_settings`. Nothing here waits for Redis at start-up.
"""

from __future__ import annotations

from proxy.admin.auth import AdminAuth
from proxy.config import Settings
from proxy.flags.counters import DecisionCounters
from proxy.flags.heartbeat import Heartbeat, ReplicaInfo, default_replica_id
from proxy.flags.hints import HintSource, RedisHints
from proxy.flags.snapshot import default_snapshot
from proxy.flags.store import FlagStore, RedisFlagStore
from proxy.flags.view import LocalLayer
from proxy.flags.watcher import FlagWatcher, WatchTiming
from proxy.flags.writer import FlagWriter


def build_store(settings: Settings) -> tuple[FlagStore, HintSource]:
    """The store and hint source on the configured Redis, with the replica timeouts."""
    config = settings.config
    redis = config.redis
    store = RedisFlagStore.from_config(redis, connect_timeout=redis.connect_timeout,
                                       socket_timeout=redis.socket_timeout)
    hints = RedisHints(redis, store.keys.changed, connect_timeout=redis.connect_timeout,
                       socket_timeout=redis.socket_timeout,
                       ping_interval=config.flags.ping_interval,
                       watchdog=config.flags.subscriber_watchdog)
    return store, hints


class FlagService:
    def __init__(self, settings: Settings):
        config = settings.config
        flags = config.flags
        self.store, self.hints = build_store(settings)
        self.defaults = default_snapshot(config)
        override = settings.resolve(flags.force_legacy_file) if flags.force_legacy_file \
            else None
        self.watcher = FlagWatcher(
            self.store, self.hints, defaults=self.defaults,
            local=LocalLayer.from_config(config, force_legacy=settings.force_legacy),
            timing=WatchTiming.from_config(flags), override_file=override,
        )
        self.counters = DecisionCounters()
        self.replica_id = flags.replica_id or default_replica_id()
        self.heartbeat = Heartbeat(self.store, self.watcher, replica_id=self.replica_id,
                                   interval=flags.heartbeat_interval, ttl=flags.heartbeat_ttl,
                                   info=replica_info(settings))
        self.writer = FlagWriter(self.store, defaults=self.defaults)
        self.auth = AdminAuth(settings.admin_token)

    async def start(self) -> None:
        await self.watcher.start()
        await self.heartbeat.start()

    async def aclose(self) -> None:
        await self.heartbeat.aclose()
        await self.watcher.aclose()
        await self.hints.aclose()
        await self.store.aclose()

    def apply_settings(self, settings: Settings) -> None:
        """A reloaded config.json: new local switches and new defaults, at once."""
        config = settings.config
        self.defaults = default_snapshot(config)
        self.writer.defaults = self.defaults
        self.watcher.set_defaults(self.defaults)
        self.watcher.set_local(LocalLayer.from_config(config,
                                                      force_legacy=settings.force_legacy))
        self.heartbeat.set_info(replica_info(settings))


def replica_info(settings: Settings) -> ReplicaInfo:
    return ReplicaInfo(config=settings.source,
                       routes=tuple(route.prefix for route in settings.config.proxy.routes),
                       missing_keys=tuple(sorted(set(settings.missing_keys().values()))))
