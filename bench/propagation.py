"""Flag propagation: how long from a flag write until every replica acts on it.

Starts a redis-server, a TCP fault proxy in front of it (the replicas' only way to
Redis) and three `llm-shadow serve` replicas with the default flag timings (poll 250 ms).
Then, twice, it flips the flags N times (default 200) and measures, per flip, the time
from just before the write until each replica's `GET /flagz` shows the new version;
a flip counts when the *last* replica has it.

    pub/sub            hints delivered: the replica re-reads on the hint
    pub/sub blocked    the fault proxy silently drops every pub/sub message (PINGs still
                       get their pongs, so the subscriber looks healthy): only the poll
                       carries the change

Prints p50 / p99 / max per mode. Aims (issue #3): p99 under 50 ms with pub/sub, under
1 s without. Every replica's /flagz is polled over a keep-alive connection with a 1 ms
pause between polls, so the figures include up to one /flagz round trip plus that pause
(about 2 ms on loopback) of measurement error. Flips are spaced by a random 0-250 ms, so
writes land at random points of the replicas' poll cycles.

    python bench/propagation.py               # 200 flips per mode
    python bench/propagation.py --flips 50    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from proxy.flags.writer import FlagWriter  # noqa: E402
from tests.fakes.faultproxy import FaultProxy, redis_through  # noqa: E402
from tests.fakes.proxyproc import ProxyProcess  # noqa: E402
from tests.fakes.servers import RedisServer, wait_for  # noqa: E402

PREFIX = "bench-propagation"
REPLICAS = 3
POLL_PAUSE = 0.001


def replica_config(redis_url: str, name: str) -> dict[str, Any]:
    # Default flag timings on purpose: the benchmark measures what production gets.
    return {"redis": {"url": redis_url, "key_prefix": PREFIX},
            "flags": {"replica_id": name}}


class FlagzPoller:
    """`GET /flagz` over one keep-alive connection with a minimal HTTP/1.1 client: a
    general-purpose client spends about a millisecond of CPU per request, which on a
    2-core machine would delay the replicas it is measuring."""

    REQUEST = b"GET /flagz HTTP/1.1\r\nHost: bench\r\n\r\n"

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def version(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(self.REQUEST)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        body = await self.reader.readexactly(length)
        return int(re.search(rb'"version":(\d+)', body).group(1))  # type: ignore[union-attr]

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def until_version(poller: FlagzPoller, version: int, deadline: float) -> float:
    while True:
        seen = await poller.version()
        now = time.perf_counter()
        if seen >= version:
            return now
        if now > deadline:
            raise TimeoutError(f"replica :{poller.port} still on version {seen} < {version}")
        # A short pause between polls keeps the measuring process (and the fault proxy
        # thread sharing its GIL) from starving the replicas on a 2-core machine.
        await asyncio.sleep(POLL_PAUSE)


async def flips(writer: FlagWriter, replicas: list[ProxyProcess], count: int,
                start_version: int) -> list[float]:
    """Seconds from write to the last replica showing each new version."""
    pollers = [FlagzPoller(replica.admin_port) for replica in replicas]
    results: list[float] = []
    try:
        for n in range(count):
            expected = start_version + n + 1
            started = time.perf_counter()
            snapshot = await writer.update({"shadow_percent": float(n % 2) * 10,
                                            "divert_percent": 0.0}, actor="bench")
            assert snapshot.version == expected, (snapshot.version, expected)
            seen = await asyncio.gather(*(until_version(poller, expected, started + 10)
                                          for poller in pollers))
            results.append(max(seen) - started)
            # A random gap, so writes land at random points of the replicas' poll cycles
            # (a fixed gap would synchronise them and bias the poll-only figures).
            await asyncio.sleep(random.uniform(0.0, 0.25))
    finally:
        for poller in pollers:
            await poller.aclose()
    return results


def stats(replicas: list[ProxyProcess]) -> dict[str, int]:
    total: dict[str, int] = {}
    for replica in replicas:
        watcher = httpx.get(replica.admin_url + "/flagz", timeout=5).json()["watcher"]
        for key, value in watcher.items():
            total[key] = total.get(key, 0) + value
    return total


def row(name: str, values: list[float], aim: str) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"{name:<18} {statistics.median(ordered) * 1000:>9.1f} {p99 * 1000:>9.1f} "
            f"{ordered[-1] * 1000:>9.1f}   {aim}")


async def measure(args: argparse.Namespace, fault: FaultProxy, redis: RedisServer,
                  replicas: list[ProxyProcess]) -> None:
    writer = FlagWriter(redis.url, PREFIX)
    version = (await writer.update({"kill": False}, actor="bench", reason="seed")).version
    wait_for(lambda: all(httpx.get(r.admin_url + "/flagz").json()["version"] == version
                         for r in replicas), message="replicas seeded")
    print(f"propagation: {len(replicas)} replicas, {args.flips} flips per mode, "
          f"write -> every replica's /flagz shows the new version (ms)")
    print(f"{'mode':<18} {'p50':>9} {'p99':>9} {'max':>9}   aim")
    before = stats(replicas)
    pubsub = await flips(writer, replicas, args.flips, version)
    after = stats(replicas)
    print(row("pub/sub", pubsub, "p99 < 50 ms"), flush=True)
    fault.set_mode("drop_subscriber")
    blocked = await flips(writer, replicas, args.flips, version + args.flips)
    final = stats(replicas)
    print(row("pub/sub blocked", blocked, "p99 < 1000 ms (poll every 250 ms)"))
    print(f"\nreplica updates  pub/sub run: via hint {_delta(after, before, 'updates_hint')}, "
          f"via poll {_delta(after, before, 'updates_poll')}; blocked run: via hint "
          f"{_delta(final, after, 'updates_hint')}, via poll "
          f"{_delta(final, after, 'updates_poll')}; pub/sub messages dropped "
          f"{fault.dropped_messages}")
    await writer.aclose()


def _delta(now: dict[str, int], then: dict[str, int], key: str) -> int:
    return now.get(key, 0) - then.get(key, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flips", type=int, default=200)
    args = parser.parse_args()
    redis = RedisServer().start()
    replicas: list[ProxyProcess] = []
    try:
        with FaultProxy(redis.port) as fault:
            redis_through(fault)
            replicas = [ProxyProcess(replica_config(fault.url, f"bench-{n}"))
                        for n in range(REPLICAS)]
            for replica in replicas:
                replica.start(wait=False)
            for replica in replicas:
                wait_for(replica.is_ready, timeout=60, message="replica ready")
            asyncio.run(measure(args, fault, redis, replicas))
    finally:
        for replica in replicas:
            replica.stop()
        redis.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
