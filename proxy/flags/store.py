"""The flag store on Redis: read the snapshot, write it atomically, read the audit
stream, keep replica heartbeats.

Layer: adapter. This module and `proxy.flags.hints` are the only places that talk to
Redis for flags; failures become `StoreError` through `proxy.redisfailure`, the one
mapping of redis-py exceptions (kinds: auth, timeout, connection, failover, error).

The client comes from `proxy.redisclient` (timeouts, no hidden retries, no health-check
PINGs: the poll is the health check; RESP2, which keeps the minimal ACL small). Every
operation also runs under `asyncio.timeout(budget)`, so no library path can hold a
replica longer than connect + read timeouts.

Key names come from `RedisSection.keyspace`: `llm-shadow:flags` on a single node or
with Sentinel, `{llm-shadow}:flags` in a Redis Cluster (one hash slot for every key, so
the write script's keys and the hint channel are on one node).

Writes are one Lua script (`EVALSHA`): compare the stored bytes with what the writer
read, then SET the new snapshot (version + 1), XADD the audit entry and PUBLISH the
version on the changed channel. The snapshot is therefore committed before the hint
goes out, and two concurrent writers cannot lose each other's change: the second one
sees a conflict, re-reads and re-applies (`FlagWriter`).

Minimal ACLs (Redis >= 7.0; `minimal_acl()` builds them for any prefix, and a test
applies them), with the default prefix:

    ACL SETUSER llm-shadow-replica on >PASSWORD resetkeys resetchannels
        %R~llm-shadow:flags %W~llm-shadow:replicas:* &llm-shadow:flags:changed
        -@all +get +set +subscribe +ping
    ACL SETUSER llm-shadow-writer on >PASSWORD resetkeys resetchannels
        ~llm-shadow:flags ~llm-shadow:flags:audit %R~llm-shadow:replicas:*
        &llm-shadow:flags:changed -@all +get +mget +scan +evalsha +eval +script|load
        +set +xadd +xrevrange +publish +type +ping

Replicas can read the snapshot, subscribe to the hint channel and write only their own
heartbeat keys; they cannot change the flags.

Pass the user in the URL (`redis://llm-shadow-replica:PASSWORD@host:6379/0`, or
`rediss://` for TLS). Anyone who can write the flag key can redirect production LLM
traffic: treat the writer credentials as a privileged control plane.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from proxy.config.proxy import RedisSection
from proxy.flags.audit import AUDIT_MAXLEN, AuditEntry, parse_entry
from proxy.redisclient import Client, in_process, redis_client
from proxy.redisfailure import RedisUnavailable, redis_failures


class StoreError(RedisUnavailable):
    """The flag (or ramp) store could not be used; `kind` separates auth failures (do
    not hammer) from network ones, for logs and counters. The message never contains
    credentials."""


@dataclass(frozen=True)
class Keys:
    """Every Redis name the flags use, from one prefix (contracts: Redis keys)."""

    prefix: str

    @property
    def flags(self) -> str:
        return f"{self.prefix}:flags"

    @property
    def changed(self) -> str:
        return f"{self.prefix}:flags:changed"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:flags:audit"

    def replica(self, replica_id: str) -> str:
        return f"{self.prefix}:replicas:{replica_id}"

    @property
    def replicas_pattern(self) -> str:
        return f"{self.prefix}:replicas:*"


class FlagStore(Protocol):
    """What the watcher, the heartbeat and the writer need from a store."""

    kind: Literal["redis", "memory"]
    keys: Keys

    async def read(self) -> bytes | None: ...

    async def compare_and_set(self, expected: bytes | None, new: bytes,
                              entry: AuditEntry) -> bool: ...

    async def audit(self, limit: int) -> list[AuditEntry]: ...

    async def put_status(self, replica_id: str, raw: bytes, ttl: float) -> None: ...

    async def statuses(self) -> list[bytes]: ...

    async def aclose(self) -> None: ...


WRITE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'none' and kind ~= 'stream' then
  return redis.error_reply('audit key ' .. KEYS[2] .. ' is not a stream')
end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


def minimal_acl(prefix: str, *, cluster: bool = False) -> dict[str, list[str]]:
    """`ACL SETUSER` rules (after the user name and password) for each role; `prefix` is
    the keyspace (`RedisSection.keyspace`: `{llm-shadow}` in a cluster, whose nodes each
    need the users, and where every role may also read the topology: `CLUSTER SLOTS` and
    `COMMAND` for redis-py's cluster client, `CLUSTER NODES` for the hint subscriber).

    - `flag-reader`: the least a replica needs for the flags alone (read the snapshot,
      subscribe to hints, write its heartbeat);
    - `replica`: a sidecar as it runs: the flag reader plus its own data (learned
      records, the shadow budget, report aggregates, ramp state), never the flags;
    - `replica-ramp`: a replica that may also run the auto-ramp, which writes the flags;
    - `writer`: the CLI and admin API (`set`, `rollback`, `status`, `audit`).
    """
    keys = Keys(prefix)
    common = ["on", "resetkeys", "resetchannels", f"&{keys.changed}", "-@all", "+ping",
              *(["+cluster|slots", "+cluster|nodes", "+command"] if cluster else [])]
    reader = [*common, f"%R~{keys.flags}", f"%W~{keys.replicas_pattern}",
              "+get", "+set", "+subscribe"]
    data = [f"~{prefix}:{area}:*" for area in ("learning", "budget", "report", "ramp")]
    data_commands = ["+@read", "+@write", "+@scripting", "-@dangerous"]
    writer = [f"~{keys.flags}", f"~{keys.audit}", f"%R~{keys.replicas_pattern}", "+get",
              "+mget", "+scan", "+evalsha", "+eval", "+script|load", "+set", "+xadd",
              "+xrevrange", "+publish", "+type"]
    return {
        "flag-reader": reader,
        "replica": [*reader, *data, *data_commands],
        "replica-ramp": [*reader, *data, *data_commands, *writer],
        "writer": [*common, *writer],
    }


def redis_errors(budget: float, what: str) -> AbstractAsyncContextManager[None]:
    """Bound one operation by `budget` seconds and map every failure to `StoreError`."""
    return redis_failures(what, StoreError, budget=budget)


class RedisFlagStore:
    def __init__(self, client: Client, prefix: str, *, budget: float,
                 owns_client: bool = False):
        self.keys = Keys(prefix)
        self.budget = budget
        self.client = client
        # What a replica's view names as its source: "memory" for `memory://`.
        self.kind: Literal["redis", "memory"] = "memory" if in_process(client) else "redis"
        self._owns_client = owns_client
        self._write = client.register_script(WRITE_SCRIPT)

    @classmethod
    def from_config(cls, redis: RedisSection | str, *, connect_timeout: float,
                    socket_timeout: float) -> RedisFlagStore:
        """A store with a client of its own (closed by `aclose`); a `str` is a single
        node's URL, with the default key prefix."""
        section = RedisSection(url=redis) if isinstance(redis, str) else redis
        client = redis_client(section, connect_timeout=connect_timeout,
                              socket_timeout=socket_timeout)
        return cls(client, section.keyspace, budget=connect_timeout + socket_timeout,
                   owns_client=True)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, connect_timeout: float,
                 socket_timeout: float) -> RedisFlagStore:
        """A single node's store under `prefix` (tests and tools)."""
        return cls.from_config(RedisSection(url=url, key_prefix=prefix),
                               connect_timeout=connect_timeout, socket_timeout=socket_timeout)

    async def read(self) -> bytes | None:
        async with redis_errors(self.budget, "read flags"):
            value = await self.client.get(self.keys.flags)
        return cast("bytes | None", value)

    async def compare_and_set(self, expected: bytes | None, new: bytes,
                              entry: AuditEntry) -> bool:
        args: list[Any] = [expected or b"", new, self.keys.changed, entry.version,
                           AUDIT_MAXLEN]
        for name, value in entry.fields().items():
            args += [name, value]
        # A script load may precede the call after a restart: two round trips.
        async with redis_errors(self.budget * 2, "write flags"):
            done = await self._write(keys=[self.keys.flags, self.keys.audit], args=args)
        return bool(done)

    async def audit(self, limit: int) -> list[AuditEntry]:
        async with redis_errors(self.budget, "read audit"):
            rows: list[Any] = cast(list[Any], await self.client.xrevrange(
                self.keys.audit, count=limit))
        return [parse_entry(_text(entry_id), _text_map(fields)) for entry_id, fields in rows]

    async def put_status(self, replica_id: str, raw: bytes, ttl: float) -> None:
        async with redis_errors(self.budget, "write heartbeat"):
            await self.client.set(self.keys.replica(replica_id), raw,
                                  px=max(1, int(ttl * 1000)))

    async def statuses(self) -> list[bytes]:
        async with redis_errors(self.budget * 4, "read replica status"):
            names = [name async for name in
                     self.client.scan_iter(match=self.keys.replicas_pattern, count=200)]
            values = await self.client.mget(names) if names else []
        return [_bytes(value) for value in values if value is not None]

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _text_map(fields: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in fields.items()}
