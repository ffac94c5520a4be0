"""The ramp's Redis keys against a real redis-server: the lock (take, renew, release only
with the right token, expiry), fenced compare-and-set state writes with history, and
mapped errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from proxy.flags.store import StoreError
from proxy.ramp.state import RampState, RampStateInvalid, encode_state, new_ramp
from proxy.ramp.state_store import RampStore
from proxy.redisclient import redis_client
from tests.fakes.servers import RedisServer, free_port
from tests.ramp.helpers import NOW, World, eventually, run, tiny_policy, world

pytestmark = pytest.mark.integration


def first_state() -> RampState:
    return new_ramp(tiny_policy(), source="t", step=0, now=NOW, actor="cli:t", reason="go",
                    baselines={})


def test_lock_is_exclusive_and_only_its_holder_renews_or_releases(
        redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        store = w.store
        assert await store.holder() is None
        assert await store.acquire("a|1", 5)
        assert not await store.acquire("b|1", 5)
        holder = await store.holder()
        assert holder is not None and holder.replica_id == "a"
        assert holder.expires_in is not None and 0 < holder.expires_in <= 5
        assert not await store.renew("b|1", 5) and not await store.release("b|1")
        assert await store.renew("a|1", 10)
        assert await store.release("a|1")
        assert not await store.renew("a|1", 5)  # gone: the holder learns it lost the lock
        assert await store.acquire("b|1", 5)

    run(_with(redis_server, body))


def test_an_expired_lock_can_be_taken_over(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        assert await w.store.acquire("a|1", 0.2)
        # the TTL runs on Redis's clock: wait for it, with a deadline
        await eventually(lambda: w.store.acquire("b|1", 5), message="the expired lock")
        assert not await w.store.renew("a|1", 5)

    run(_with(redis_server, body))


def test_state_writes_compare_and_fence(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        store = w.store
        state = first_state()
        assert await store.read() == (None, None)
        assert await store.write(b"stale", state) == "conflict"
        assert await store.write(None, state) == "ok"
        raw, read = await store.read()
        assert raw == encode_state(state) and read == state
        assert await store.write(None, state) == "conflict"
        paused = state.paused(now=NOW + 1, actor="cli:t", reason="look")
        # a replica's write needs the lock, an operator's does not
        assert await store.write(raw, paused, token="a|1") == "not_holder"
        assert await store.acquire("a|1", 5)
        assert await store.write(raw, paused, token="b|1") == "not_holder"
        assert await store.write(raw, paused, token="a|1") == "ok"
        history = await store.history(10)
        assert [(h["event"], h["status"], h["actor"]) for h in history] == [
            ("pause", "paused", "cli:t"), ("start", "running", "cli:t")]
        assert history[0]["reason"] == "look" and history[0]["label"] == "shadow 5%"
        _, again = await store.read()
        assert again is not None
        assert await store.write(encode_state(again), again.marked_applied(),
                                 history=False) == "ok"
        assert len(await store.history(10)) == 2

    run(_with(redis_server, body))


def test_evaluation_is_kept_and_garbage_state_is_reported(redis_server: RedisServer) -> None:
    async def body(w: World) -> None:
        assert await w.store.evaluation() is None
        await w.store.put_evaluation({"action": "hold", "at": NOW})
        assert await w.store.evaluation() == {"action": "hold", "at": NOW}
        await w.client.set(w.store.keys.state, b"{not a state")
        with pytest.raises(RampStateInvalid, match="ramp state"):
            await w.store.read()
        assert await w.store.read_raw() == b"{not a state"

    run(_with(redis_server, body))


def test_unreachable_redis_is_a_store_error() -> None:
    async def body() -> None:
        client = redis_client(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5,
                              socket_timeout=0.5)
        store = RampStore(client, "x", budget=1.0)
        try:
            with pytest.raises(StoreError, match="cannot reach Redis") as caught:
                await store.read()
            assert caught.value.kind == "connection"
            with pytest.raises(StoreError):
                await store.acquire("a|1", 1)
        finally:
            await client.aclose()

    run(body())


async def _with(server: RedisServer, body: Callable[[World], Awaitable[None]]) -> None:
    async with world(server.url) as w:
        await body(w)
