"""Live traffic flags: one versioned JSON snapshot in Redis, copied into every replica.

    snapshot.py   the snapshot model, validation, defaults and the writers' merge (pure)
    view.py       what a replica acts on: snapshot + state + source + age (pure)
    replicas.py   replica heartbeat records and convergence checks (pure)
    counters.py   decision counters for /flagz (pure)
    backoff.py    reconnect delays with jitter (pure)
    store.py      the Redis adapter: read, atomic write, audit, heartbeats
    hints.py      the Redis pub/sub "changed" subscriber with its PING watchdog
    watcher.py    the replica state machine: hint + resubscribe + poll, staleness
    heartbeat.py  publishes this replica's status with a short TTL
    writer.py     FlagWriter (async) and the sync functions MigrationAdapter uses

Layering: the pure modules import nothing from redis or starlette; `store` and `hints`
are the only modules that talk to Redis (a real one, or the in-process `memory://`);
request handling reads `FlagWatcher.current` and never awaits anything. The admin routes
(`GET /flagz`, `PUT /flags`, `POST /rollback`) are in `proxy.admin.flag_routes`.
"""
