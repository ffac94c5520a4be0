"""Where learned records live: Redis, shared by every replica, or this process's memory.

Layer: adapter (redis). The only module of the orchestrator that talks to Redis; its
failures become `StoreUnavailable` through `proxy.redisfailure`, the one mapping of
redis-py errors.

Keys (prefix = `RedisSection.keyspace`: `redis.key_prefix`, with a hash tag in cluster
mode):

    {prefix}:learning:index                      set of JSON [task type, model]
    {prefix}:learning:record:{task}:{model}      hash of counters (HINCRBY/HINCRBYFLOAT)
    {prefix}:learning:samples:{task}:{model}     list of recent calls, newest first, capped
    {prefix}:learning:feedback:{request}:{model} marker so feedback counts once (with TTL)
    {prefix}:learning:answered:{hour}            hash request id → {model: task type}:
                                                 the requests answered in that hour (epoch
                                                 hour), expiring feedback_ttl after it

Replicas only ever *add* to counters, with atomic increments, so concurrent writers never
lose each other's updates and no lock is needed. The `answered` hashes let feedback
reach any replica's admin port: whichever replica answered the request wrote which
models answered it, and feedback about any other request or model is refused. They live
as long as feedback is accepted (`orchestrator.learning.feedback_ttl_seconds`, plus up
to an hour). One hash per hour rather than a key per request halves the memory (about
120 bytes per orchestrated request instead of 230, measured with redis-server 7); a
lookup reads the hours of the feedback window in one pipeline, which feedback, being
rare, can afford.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from proxy.config.proxy import RedisSection
from proxy.orchestrator.learned import FLOAT_FIELDS, ModelRecord, RecordKey, Sample
from proxy.redisclient import MEMORY_URL, Client, in_process, redis_client
from proxy.redisfailure import FOREIGN, RedisUnavailable, redis_failures

Delta = tuple[RecordKey, Mapping[str, float]]
ANSWERED_BUCKET_SECONDS = 3600
# A request the orchestrator answered: its id, and model → task type of each answer.
Answered = tuple[str, Mapping[str, str]]


class StoreUnavailable(RedisUnavailable):
    """The shared store could not be reached; the message names no credentials."""


class LearningStore(Protocol):
    kind: str

    async def load(self) -> dict[RecordKey, ModelRecord]: ...

    async def apply(self, deltas: Sequence[Delta],
                    samples: Sequence[tuple[RecordKey, Sample]]) -> None: ...

    async def load_samples(self) -> dict[RecordKey, list[Sample]]: ...

    async def claim_feedback(self, request_id: str, model: str) -> bool: ...

    async def remember_answers(self, answers: Sequence[Answered]) -> None: ...

    async def answers(self, request_id: str) -> dict[str, str] | None: ...


class MemoryLearningStore:
    """Records in this process only: not shared between replicas, lost on restart."""

    kind = "memory"

    def __init__(self, samples_kept: int = 200, feedback_ttl: float = 7 * 24 * 3600):
        self._records: dict[RecordKey, ModelRecord] = {}
        self._samples: dict[RecordKey, collections.deque[Sample]] = {}
        self._claims: dict[tuple[str, str], float] = {}
        self._answers: dict[str, tuple[float, dict[str, str]]] = {}
        self._samples_kept = samples_kept
        self._ttl = feedback_ttl

    async def load(self) -> dict[RecordKey, ModelRecord]:
        return dict(self._records)

    async def apply(self, deltas: Sequence[Delta],
                    samples: Sequence[tuple[RecordKey, Sample]]) -> None:
        for key, delta in deltas:
            self._records[key] = self._records.get(key, ModelRecord()).plus(delta)
        for key, sample in samples:
            window = self._samples.setdefault(key, collections.deque(maxlen=self._samples_kept))
            window.appendleft(sample)

    async def load_samples(self) -> dict[RecordKey, list[Sample]]:
        return {key: list(window) for key, window in self._samples.items()}

    async def claim_feedback(self, request_id: str, model: str) -> bool:
        now = time.monotonic()
        if len(self._claims) > 100_000:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        key = (request_id, model)
        if self._claims.get(key, 0.0) > now:
            return False
        self._claims[key] = now + self._ttl
        return True

    async def remember_answers(self, answers: Sequence[Answered]) -> None:
        now = time.monotonic()
        if len(self._answers) > 100_000:
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
        for request_id, models in answers:
            _, known = self._answers.get(request_id, (0.0, {}))
            self._answers[request_id] = (now + self._ttl, {**known, **models})

    async def answers(self, request_id: str) -> dict[str, str] | None:
        expires, models = self._answers.get(request_id, (0.0, {}))
        return dict(models) if expires > time.monotonic() else None


class RedisLearningStore:
    """Records in Redis, shared by every replica. Give it a long-lived client (the proxy)
    or the `redis` section (the Python API, which may run each call in a new event loop:
    a connection is then opened per operation)."""

    kind = "redis"

    def __init__(self, prefix: str, *, client: Client | None = None,
                 redis: RedisSection | None = None, samples_kept: int = 200,
                 feedback_ttl: int = 7 * 24 * 3600, timeout: float = 1.0):
        if (client is None) == (redis is None):
            raise ValueError("give exactly one of client= and redis=")
        self.prefix = prefix
        self._client = client
        self._redis = redis
        in_memory = in_process(client) if client is not None else \
            redis is not None and redis.url.startswith(MEMORY_URL)
        # `memory://` is this process's store: logged as such, like the memory store.
        self.kind = "memory" if in_memory else "redis"
        self._samples_kept = samples_kept
        self._ttl = feedback_ttl
        self._timeout = timeout

    def key(self, kind: str, task: str, model: str) -> str:
        return f"{self.prefix}:learning:{kind}:{task}:{model}"

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:learning:index"

    async def load(self) -> dict[RecordKey, ModelRecord]:
        async with self._session() as client:
            keys = await self._index(client)
            pipe = client.pipeline(transaction=False)
            for task, model in keys:
                pipe.hgetall(self.key("record", task, model))
            rows = await pipe.execute()
        return {key: ModelRecord.from_counters(row) for key, row in zip(keys, rows, strict=True)}

    async def apply(self, deltas: Sequence[Delta],
                    samples: Sequence[tuple[RecordKey, Sample]]) -> None:
        if not deltas and not samples:
            return
        async with self._session() as client:
            pipe = client.pipeline(transaction=False)
            for (task, model), delta in deltas:
                pipe.sadd(self.index_key, orjson.dumps([task, model]).decode())
                record = self.key("record", task, model)
                for name, value in delta.items():
                    if name in FLOAT_FIELDS:
                        pipe.hincrbyfloat(record, name, float(value))
                    elif value:
                        pipe.hincrby(record, name, int(value))
            for (task, model), sample in samples:
                key = self.key("samples", task, model)
                pipe.lpush(key, orjson.dumps(sample.to_list()))
                pipe.ltrim(key, 0, self._samples_kept - 1)
            await pipe.execute()

    async def load_samples(self) -> dict[RecordKey, list[Sample]]:
        async with self._session() as client:
            keys = await self._index(client)
            pipe = client.pipeline(transaction=False)
            for task, model in keys:
                pipe.lrange(self.key("samples", task, model), 0, -1)
            rows = await pipe.execute()
        out: dict[RecordKey, list[Sample]] = {}
        for key, row in zip(keys, rows, strict=True):
            parsed = (Sample.from_list(orjson.loads(item)) for item in row)
            out[key] = [sample for sample in parsed if sample is not None]
        return out

    async def claim_feedback(self, request_id: str, model: str) -> bool:
        key = f"{self.prefix}:learning:feedback:{request_id}:{model}"
        async with self._session() as client:
            return bool(await client.set(key, b"1", nx=True, ex=self._ttl))

    def answers_key(self, hour: int) -> str:
        return f"{self.prefix}:learning:answered:{hour}"

    async def remember_answers(self, answers: Sequence[Answered]) -> None:
        if not answers:
            return
        hour = int(time.time() // ANSWERED_BUCKET_SECONDS)
        key = self.answers_key(hour)
        async with self._session() as client:
            pipe = client.pipeline(transaction=False)
            for request_id, models in answers:
                pipe.hset(key, request_id, orjson.dumps(dict(models)))
            pipe.expireat(key, (hour + 1) * ANSWERED_BUCKET_SECONDS + self._ttl)
            await pipe.execute()

    async def answers(self, request_id: str) -> dict[str, str] | None:
        """The newest record of the request in the feedback window (one more hour each
        side for replicas' clocks)."""
        now = time.time()
        first = int((now - self._ttl) // ANSWERED_BUCKET_SECONDS) - 1
        last = int(now // ANSWERED_BUCKET_SECONDS) + 1
        async with self._session() as client:
            pipe = client.pipeline(transaction=False)
            for hour in range(last, first - 1, -1):
                pipe.hget(self.answers_key(hour), request_id)
            found = await pipe.execute()
        raw = next((value for value in found if value is not None), None)
        if raw is None:
            return None
        models = orjson.loads(raw)
        return {str(model): str(task) for model, task in models.items()}

    async def _index(self, client: Client) -> list[RecordKey]:
        members = await client.smembers(self.index_key)
        keys = []
        for member in members:
            task, model = orjson.loads(member)
            keys.append((str(task), str(model)))
        return sorted(keys)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Client]:
        async with redis_failures("learning store", StoreUnavailable):
            if self._client is not None:
                yield self._client
                return
            assert self._redis is not None
            client = _client(self._redis, self._timeout)
            try:
                yield client
            finally:
                await client.aclose()


def _client(redis: RedisSection | str, timeout: float) -> Client:
    return redis_client(redis, connect_timeout=timeout, socket_timeout=timeout)


async def reachable(redis: RedisSection | str, timeout: float = 0.5) -> bool:
    """Whether the configured Redis answers PING (for the Python API's choice of
    store)."""
    client = _client(redis, timeout)
    try:
        async with asyncio.timeout(timeout * 2):
            return bool(await client.ping())
    except FOREIGN:
        return False
    finally:
        await client.aclose()


def describe(store: Any) -> str:
    """For logs: which store, never its URL (which may carry a password)."""
    return "Redis (shared by every replica)" if store.kind == "redis" else "memory"
