"""Shadow isolation: legacy latency with shadow off, and with shadow at 100 % against an
orchestrator that is fast, slow (2 s) and failing, side by side in one run; then the
proxy's memory with 500 concurrent streams under shadow.

Load is open-loop at a fixed arrival rate (default 100 streamed requests/s, each answered
by the legacy upstream in about 5 ms), the way a sidecar sees traffic: requests do not
wait for each other, so any delay the shadow adds shows in the legacy latency instead of
being absorbed by a slower request rate. Shadow jobs left from one scenario are drained
before the next.

Prints legacy p50/p99 per scenario and the ratio to shadow off (aim: p99 within 10 %),
the shadow outcomes (completed, dropped by reason), and RSS before and at the peak of the
500 streams. Everything runs on loopback: a fake legacy upstream, a fake external
orchestrator whose behaviour changes per scenario, a throw-away redis-server and
`llm-shadow serve`.

    python bench/isolation.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.processes import start_fake_upstream  # noqa: E402
from bench.processes import start_proxy as launch_proxy  # noqa: E402
from proxy.flags.writer import update_flags_sync  # noqa: E402
from tests.fakes.servers import RedisServer, free_port, wait_for  # noqa: E402

CHAT = {"model": "bench", "stream": True,
        "messages": [{"role": "user", "content": "isolation benchmark"}]}
SCENARIOS = {
    "shadow off": None,
    "fast orchestrator": {},
    "slow orchestrator (2 s)": {"latency_ms": 2000},
    "failing orchestrator": {"status": 500},
    "shadow off (again)": None,
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def load(url: str, n: int, rate: float, headers: dict[str, str]) -> list[float]:
    """`n` requests arriving at `rate` per second (open loop); their latencies."""
    latencies: list[float] = []
    payload = json.dumps(CHAT).encode()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            start = time.perf_counter()
            async with session.post(url, data=payload, headers=headers) as response:
                await response.read()
                assert response.status == 200
            latencies.append(time.perf_counter() - start)

        begin = time.perf_counter()
        await asyncio.gather(*(one(begin + i / rate) for i in range(n)))
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--streams", type=int, default=500)
    args = parser.parse_args()

    redis = RedisServer().start()
    legacy_port, orch_port = free_port(), free_port()
    legacy = start_fake_upstream(legacy_port, {"latency_ms": 5})
    orchestrator = start_fake_upstream(orch_port, {"answer": "orchestrator"})
    port, admin = free_port(), free_port()
    prefix = "bench-isolation"
    config = {"proxy": {"listen": {"port": port}, "admin": {"port": admin},
                        "routes": [{"prefix": "/openai",
                                    "upstream": f"http://127.0.0.1:{legacy_port}"}]},
              "redis": {"url": redis.url, "key_prefix": prefix},
              "orchestrator": {"endpoint": f"http://127.0.0.1:{orch_port}"},
              "shadow": {"budget_usd_per_hour": 1e9, "max_concurrency": 64},
              "comparison": {"noise_sample_percent": 0},
              "flags": {"poll_interval": 0.1}}
    proxy = launch_proxy(config, ready=False)
    url = f"http://127.0.0.1:{port}/openai/v1/chat/completions"
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{admin}/readyz").status_code == 200,
                 timeout=30)
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{orch_port}/v1/models").is_success)
        print(f"llm-shadow isolation: {args.requests} streamed requests per scenario at "
              f"{args.rate:.0f}/s, legacy answers in ~5 ms, cpus={os.cpu_count()}")
        asyncio.run(load(url, 300, args.rate, {}))  # warm-up
        baseline_p99 = None
        print(f"{'scenario':<26}{'p50':>9}{'p99':>9}{'p99/off':>9}   shadows")
        for name, behaviour in SCENARIOS.items():
            version = update_flags_sync(redis.url, prefix,
                                        {"shadow_percent": 0 if behaviour is None else 100},
                                        actor="bench", reason=name).version
            wait_for(lambda v=version: httpx.get(
                f"http://127.0.0.1:{admin}/flagz").json()["version"] >= v)
            if behaviour is not None:
                httpx.post(f"http://127.0.0.1:{orch_port}/__fake/behaviour",
                           json={"answer": "orchestrator", **behaviour})
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{admin}/statz").json()
                     ["shadow"]["in_flight"] == 0, timeout=60, message="shadows drained")
            before = httpx.get(f"http://127.0.0.1:{admin}/statz").json()["shadow"]
            latencies = asyncio.run(load(url, args.requests, args.rate, {}))
            after = httpx.get(f"http://127.0.0.1:{admin}/statz").json()["shadow"]
            p50, p99 = pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000
            if baseline_p99 is None:
                baseline_p99 = p99
            skipped = {k: v - before["skipped"].get(k, 0) for k, v in after["skipped"].items()
                       if v - before["skipped"].get(k, 0) and k != "sampled_out"}
            print(f"{name:<26}{p50:>7.2f}ms{p99:>7.2f}ms{p99 / baseline_p99:>9.2f}   "
                  f"completed {after['completed'] - before['completed']}, "
                  f"in flight {after['in_flight']}, skipped {skipped}", flush=True)
        memory(redis.url, prefix, admin, proxy.pid, url, orch_port, args.streams)
    finally:
        for process in (proxy, legacy, orchestrator):
            process.terminate()
            process.wait()
        redis.cleanup()


def memory(redis_url: str, prefix: str, admin: int, pid: int, url: str, orch_port: int,
           streams: int) -> None:
    version = update_flags_sync(redis_url, prefix, {"shadow_percent": 100}, actor="bench",
                                reason="memory").version
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{admin}/flagz").json()["version"] >= version)
    httpx.post(f"http://127.0.0.1:{orch_port}/__fake/behaviour", json={"answer": "o"})
    idle = rss_kib(pid)
    peak = idle
    headers = {"x-fake-chunk-delay-ms": "100", "x-fake-chunks": "30"}

    async def run() -> None:
        nonlocal peak
        task = asyncio.create_task(load(url, streams, 1000.0, headers))
        while not task.done():
            peak = max(peak, rss_kib(pid))
            await asyncio.sleep(0.05)
        await task

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    print(f"memory: {streams} concurrent 3 s streams under shadow 100 % in {elapsed:.1f} s: "
          f"RSS idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
          f"{(peak - idle) / streams:.0f} KiB per stream")


if __name__ == "__main__":
    main()
