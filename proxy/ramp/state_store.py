"""The ramp's Redis keys: state, lock, latest evaluation, history.

Layer: adapter (the only module of the ramp that talks to Redis directly; failures
become `StoreError` through `proxy.redisfailure`, the one mapping of redis-py
exceptions). Keys, under `{prefix}:ramp:` (prefix = `RedisSection.keyspace`, so in a
Redis Cluster the four keys share one hash slot and the write script runs on one node):

    {prefix}:ramp:state       JSON `RampState` (see proxy.ramp.state)
    {prefix}:ramp:lock        "<replica id>|<random>" of the replica that runs the ramp,
                              SET NX PX, renewed on every evaluation
    {prefix}:ramp:evaluation  JSON of the latest evaluation, with who made it
    {prefix}:ramp:history     stream of transitions (XADD MAXLEN ~ 1000)

Lock: acquired with `SET NX PX`; renewed and released by Lua scripts that act only if
the key still holds this replica's token, so a replica can never extend or delete a lock
another one took after its own expired. A renewal that finds another token means the
lock was lost.

State writes are one Lua script: compare the stored bytes with what the writer read
(someone else's transition in between makes it fail), and, for a replica, check that
it still holds the lock (a replica that lost it cannot write), then SET the state and
XADD the history entry together. Operators' writes (`llm-shadow ramp start|pause|
resume|stop`) skip the lock check, never the comparison; `stop` also deletes the lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from proxy.flags.store import redis_errors
from proxy.ramp.state import RampState, encode_state, parse_state
from proxy.redisclient import Client

HISTORY_MAXLEN = 1000
WriteResult = Literal["ok", "conflict", "not_holder"]

WRITE_SCRIPT = """
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if #ARGV > 4 then
  local fields = {}
  for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
end
return 1
"""

RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class RampKeys:
    prefix: str

    @property
    def state(self) -> str:
        return f"{self.prefix}:ramp:state"

    @property
    def lock(self) -> str:
        return f"{self.prefix}:ramp:lock"

    @property
    def evaluation(self) -> str:
        return f"{self.prefix}:ramp:evaluation"

    @property
    def history(self) -> str:
        return f"{self.prefix}:ramp:history"


@dataclass(frozen=True)
class LockHolder:
    replica_id: str
    expires_in: float | None


class RampStore:
    def __init__(self, client: Client, prefix: str, *, budget: float = 2.0):
        self.client = client
        self.keys = RampKeys(prefix)
        self.budget = budget
        self._write = client.register_script(WRITE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    # --- state -----------------------------------------------------------------------

    async def read(self) -> tuple[bytes | None, RampState | None]:
        """The stored bytes and the parsed state (None, None when no ramp was ever
        started); raises `RampStateInvalid` for a state that does not parse."""
        raw = await self.read_raw()
        return raw, None if raw is None else parse_state(raw)

    async def read_raw(self) -> bytes | None:
        async with redis_errors(self.budget, "read the ramp state"):
            return cast("bytes | None", await self.client.get(self.keys.state))

    async def write(self, expected: bytes | None, state: RampState, *,
                    token: str | None = None, history: bool = True) -> WriteResult:
        """Replace the state if it still is `expected` (and, with `token`, only while
        that token holds the lock); add the transition to the history."""
        args: list[Any] = [expected or b"", encode_state(state), token or "", HISTORY_MAXLEN]
        if history:
            for name, value in history_fields(state).items():
                args += [name, value]
        # A script load may precede the call after a Redis restart: two round trips.
        async with redis_errors(self.budget * 2, "write the ramp state"):
            done = await self._write(keys=[self.keys.state, self.keys.lock,
                                           self.keys.history], args=args)
        if int(done) == 1:
            return "ok"
        return "conflict" if int(done) == 0 else "not_holder"

    # --- lock ------------------------------------------------------------------------

    async def acquire(self, token: str, ttl: float) -> bool:
        async with redis_errors(self.budget, "take the ramp lock"):
            return bool(await self.client.set(self.keys.lock, token, nx=True, px=_ms(ttl)))

    async def renew(self, token: str, ttl: float) -> bool:
        async with redis_errors(self.budget * 2, "renew the ramp lock"):
            return bool(await self._renew(keys=[self.keys.lock], args=[token, _ms(ttl)]))

    async def release(self, token: str) -> bool:
        async with redis_errors(self.budget * 2, "release the ramp lock"):
            return bool(await self._release(keys=[self.keys.lock], args=[token]))

    async def clear_lock(self) -> None:
        """Delete the lock whoever holds it (an operator's `ramp stop`; the holder finds
        the ramp stopped on its next tick and its release script finds nothing)."""
        async with redis_errors(self.budget, "clear the ramp lock"):
            await self.client.delete(self.keys.lock)

    async def holder(self) -> LockHolder | None:
        async with redis_errors(self.budget, "read the ramp lock"):
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.lock)
            pipe.pttl(self.keys.lock)
            token, pttl = await pipe.execute()
        if token is None:
            return None
        return LockHolder(_text(token).rpartition("|")[0] or _text(token),
                          pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else None)

    # --- evaluation and history --------------------------------------------------------

    async def put_evaluation(self, evaluation: Mapping[str, Any]) -> None:
        async with redis_errors(self.budget, "write the ramp evaluation"):
            await self.client.set(self.keys.evaluation, orjson.dumps(evaluation))

    async def evaluation(self) -> dict[str, Any] | None:
        async with redis_errors(self.budget, "read the ramp evaluation"):
            raw = await self.client.get(self.keys.evaluation)
        try:
            data = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    async def history(self, limit: int) -> list[dict[str, str]]:
        """The latest transitions, newest first."""
        async with redis_errors(self.budget, "read the ramp history"):
            rows = cast(list[Any], await self.client.xrevrange(self.keys.history,
                                                                count=limit))
        return [{_text(k): _text(v) for k, v in fields.items()} for _, fields in rows]


def history_fields(state: RampState) -> dict[str, str]:
    return {"event": state.event, "status": state.status, "step": str(state.step),
            "label": state.current.label, "actor": state.updated_by,
            "at": f"{state.updated_at:.3f}", "reason": state.reason}


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
