"""Shadow shedding: what shadows cost the legacy path at saturation and one request at a
time, side by side in one run.

Three `llm-shadow serve` processes share one fake legacy upstream, one fake external
orchestrator and a throw-away redis-server, and take turns (only one is loaded at a
time; rounds alternate so machine noise hits every cell alike):

- saturation (closed loop, `--concurrency` clients sending back to back, enough to keep
  the proxy process at 100 % CPU), non-streamed chat completions, the orchestrator
  answering at once: legacy throughput and p50/p99 with shadow off, with shadow 100 %
  and shedding on (the default `shadow.shed_lag_ms`), and with shadow 100 % and shedding
  off (`shed_lag_ms` 0) to show what shedding buys. Aims: throughput >= 0.9x and
  p99 <= 1.2x shadow off.
- one request at a time against an orchestrator that accepts connections and never
  answers, every request launching a shadow (`max_concurrency` raised so none is
  refused for room; the orchestrator's pool keeps its default 64 connections, the other
  shadows wait for one): legacy p50 with shadow off and with shadow 100 %, the legacy
  upstream answering at once and in 5 ms. Aim: +0.1 ms.
- the event-loop lag each cell saw (the pressure probe's readings sampled from /statz),
  which is what `shed_lag_ms` is compared against, and a survey of the lag under steady
  open-loop load below saturation (what normal traffic looks like to the shedder).

    python bench/shedding.py
    python bench/shedding.py --requests 4000 --concurrency 64 --rounds 2   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.processes import start_fake_upstream  # noqa: E402
from bench.processes import start_proxy as launch_proxy  # noqa: E402
from proxy.config.shadow import ShadowSection  # noqa: E402
from proxy.flags.writer import update_flags_sync  # noqa: E402
from tests.fakes.servers import RedisServer, free_port, wait_for  # noqa: E402

CHAT = {"model": "bench", "messages": [{"role": "user", "content": "shedding benchmark"}]}


@dataclass
class Proxy:
    name: str
    prefix: str
    port: int
    admin: int
    process: subprocess.Popen[bytes]
    redis_url: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/openai/v1/chat/completions"

    def statz(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.admin}/statz", timeout=10).json()

    def shadow(self, percent: float) -> None:
        version = update_flags_sync(self.redis_url, self.prefix, {"shadow_percent": percent},
                                    actor="bench", reason="bench").version
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{self.admin}/flagz").json()
                 ["version"] >= version)
        wait_for(lambda: self.statz()["shadow"]["in_flight"] == 0, timeout=120,
                 message="shadows drained")
        time.sleep(1.1)  # the lag window (1 s) forgets the drain


def start_proxy(name: str, redis: RedisServer, legacy: int, orchestrator: int,
                shadow: dict[str, Any], connections: int = 64) -> Proxy:
    port, admin = free_port(), free_port()
    prefix = f"bench-shedding-{name}"
    config = {"proxy": {"listen": {"port": port}, "admin": {"port": admin},
                        "routes": [{"prefix": "/openai",
                                    "upstream": f"http://127.0.0.1:{legacy}"}]},
              "redis": {"url": redis.url, "key_prefix": prefix},
              "orchestrator": {"endpoint": f"http://127.0.0.1:{orchestrator}",
                               "max_connections": connections},
              "shadow": {"budget_usd_per_hour": 1e9, **shadow},
              "comparison": {"noise_sample_percent": 0},
              "flags": {"poll_interval": 0.1}}
    return Proxy(name, prefix, port, admin, launch_proxy(config), redis.url)


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    lags: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed


async def closed_loop(url: str, n: int, concurrency: int, legacy_ms: float = 0.0) -> Cell:
    """`n` requests from `concurrency` clients, each sending its next as soon as its
    previous one is answered (the fake legacy upstream waits `legacy_ms` first)."""
    cell = Cell()
    payload = json.dumps(CHAT).encode()
    headers = {"content-type": "application/json", "x-fake-latency-ms": str(legacy_ms)}
    left = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def send() -> float:
            start = time.perf_counter()
            async with session.post(url, data=payload, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            return time.perf_counter() - start

        async def client() -> None:
            for _ in left:
                cell.latencies.append(await send())

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cell.elapsed = time.perf_counter() - started
    return cell


def measured(proxy: Proxy, n: int, concurrency: int, legacy_ms: float = 0.0) -> Cell:
    """A closed-loop cell, with the proxy's lag readings sampled from /statz meanwhile
    (from a thread: the sampling must not share the load generator's loop)."""
    lags: list[float] = []
    done = threading.Event()
    sampler = threading.Thread(target=sample_lag, args=(proxy, lags, done), daemon=True)
    sampler.start()
    try:
        cell = asyncio.run(closed_loop(proxy.url, n, concurrency, legacy_ms))
    finally:
        done.set()
        sampler.join()
    cell.lags = lags
    return cell


def settle(*proxies: Proxy) -> None:
    """Every process idle: no shadow in flight, the recorder's queue drained."""
    for proxy in proxies:
        wait_for(lambda p=proxy: (lambda s: s["shadow"]["in_flight"] == 0
                                  and s["recorder"]["queued"] == 0)(p.statz()),
                 timeout=120, message="the proxy settled")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def merge(cells: list[Cell]) -> Cell:
    out = Cell(elapsed=sum(c.elapsed for c in cells))
    for cell in cells:
        out.latencies += cell.latencies
        out.lags += cell.lags
    return out


def skipped(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    b, a = before["shadow"]["skipped"], after["shadow"]["skipped"]
    return {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0) and k != "sampled_out"}


async def open_loop(url: str, n: int, rate: float) -> Cell:
    """`n` requests arriving at `rate` per second, whatever the answers' pace."""
    cell = Cell()
    payload = json.dumps(CHAT).encode()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            start = time.perf_counter()
            async with session.post(url, data=payload,
                                    headers={"content-type": "application/json"}) as r:
                await r.read()
            cell.latencies.append(time.perf_counter() - start)

        begin = time.perf_counter()
        await asyncio.gather(*(one(begin + i / rate) for i in range(n)))
        cell.elapsed = time.perf_counter() - begin
    return cell


def sample_lag(proxy: Proxy, lags: list[float], done: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not done.wait(0.25):
            lags.append(client.get(f"http://127.0.0.1:{proxy.admin}/statz")
                        .json()["pressure"]["lag_max_ms"])


def lag_survey(proxy: Proxy, rates: list[float], seconds: float) -> None:
    """The loop's lag under steady load below saturation, shadow 100 %, and the share
    of shadows the default threshold sheds there: normal traffic should keep its
    shadows."""
    proxy.shadow(100)
    print(f"\nevent-loop lag below saturation (open loop, shadow 100 %, {seconds:.0f} s per "
          "rate; max lag per 1 s window, sampled every 0.25 s; shadows shed)")
    print(f"{'rate':>10}{'lag p50':>10}{'lag p90':>10}{'lag max':>10}{'shed':>11}")
    for rate in rates:
        lags: list[float] = []
        done = threading.Event()

        sampler = threading.Thread(target=sample_lag, args=(proxy, lags, done), daemon=True)
        sampler.start()
        before = proxy.statz()["shadow"]["skipped"].get("overload", 0)
        asyncio.run(open_loop(proxy.url, int(rate * seconds), rate))
        shed = proxy.statz()["shadow"]["skipped"].get("overload", 0) - before
        done.set()
        sampler.join()
        print(f"{rate:>8.0f}/s{statistics.median(lags):>8.2f}ms{pct(lags, 0.9):>8.2f}ms"
              f"{max(lags):>8.2f}ms{100 * shed / (rate * seconds):>9.1f} %", flush=True)


def saturation(args: argparse.Namespace, on: Proxy, off: Proxy) -> None:
    cells: dict[str, list[Cell]] = {"shadow off": [], "shadow 100 %, shedding on": [],
                                    "shadow 100 %, shedding off": []}
    outcomes: dict[str, dict[str, int]] = {name: {} for name in cells}
    onset: list[tuple[int, int]] = []
    per_round = args.requests // args.rounds
    plan = [("shadow off", on, 0), ("shadow 100 %, shedding on", on, 100),
            ("shadow 100 %, shedding off", off, 100)]
    for proxy in (on, off):  # warm-up: connections, lazy imports, JIT-free but cached
        proxy.shadow(100)
        asyncio.run(closed_loop(proxy.url, 500, args.concurrency))
    for round_ in range(args.rounds):
        # The order alternates, so neither the machine's drift nor one cell's aftermath
        # lands on the same cell every round; each cell starts with both processes idle.
        for name, proxy, percent in (plan if round_ % 2 == 0 else plan[::-1]):
            proxy.shadow(percent)
            settle(on, off)
            # Into saturation first, unmeasured: the cell is the steady state (the way
            # in, from idle, is the onset line below).
            idle = proxy.statz()
            asyncio.run(closed_loop(proxy.url, per_round // 2, args.concurrency))
            before = proxy.statz()
            if name == "shadow 100 %, shedding on":
                started = (before["shadow"]["completed"] - idle["shadow"]["completed"]
                           + before["shadow"]["in_flight"])
                onset.append((started, skipped(idle, before).get("overload", 0)))
            cells[name].append(measured(proxy, per_round, args.concurrency))
            after = proxy.statz()
            counts = outcomes[name]
            counts["completed"] = counts.get("completed", 0) + (
                after["shadow"]["completed"] - before["shadow"]["completed"])
            for reason, count in skipped(before, after).items():
                counts[reason] = counts.get(reason, 0) + count
    base = merge(cells["shadow off"])
    base_rps = statistics.median(c.rps for c in cells["shadow off"])
    print(f"\nsaturation: closed loop, {args.concurrency} clients, {per_round} requests x "
          f"{args.rounds} rounds per cell, orchestrator answering at once")
    print(f"{'cell':<28}{'req/s':>8}{'x off':>7}{'p50':>9}{'p99':>9}{'p99 x off':>10}"
          f"{'lag p50':>9}{'lag max':>9}   shadows")
    for name, runs in cells.items():
        cell = merge(runs)
        rps = statistics.median(c.rps for c in runs)
        p50, p99 = pct(cell.latencies, 0.5) * 1000, pct(cell.latencies, 0.99) * 1000
        lag50 = statistics.median(cell.lags) if cell.lags else 0.0
        lagmax = max(cell.lags, default=0.0)
        print(f"{name:<28}{rps:>8.0f}{rps / base_rps:>7.2f}{p50:>7.2f}ms{p99:>7.2f}ms"
              f"{p99 / (pct(base.latencies, 0.99) * 1000):>10.2f}{lag50:>7.2f}ms"
              f"{lagmax:>7.2f}ms   {outcomes[name]}", flush=True)
    print(f"onset (idle to saturation, shedding on, {per_round // 2} requests each time): "
          + ", ".join(f"{ran} shadows ran and {shed} were shed" for ran, shed in onset))


def one_at_a_time(args: argparse.Namespace, proxy: Proxy, orchestrator_port: int) -> None:
    httpx.post(f"http://127.0.0.1:{orchestrator_port}/__fake/behaviour",
               json={"hang": "headers"})
    per_round = args.sequential // args.rounds
    print(f"\none at a time: {per_round} requests x {args.rounds} rounds per cell, the "
          "orchestrator accepts connections and never answers, every request launches a "
          "shadow")
    print(f"{'legacy answers':<16}{'cell':<14}{'p50':>9}{'p99':>9}{'lag p50':>9}"
          f"{'p50 added':>11}   shadows")
    for legacy_ms in (0.0, 5.0):
        off: list[Cell] = []
        on: list[Cell] = []
        counts: dict[str, int] = {}
        proxy.shadow(0)
        asyncio.run(closed_loop(proxy.url, 300, 1, legacy_ms))  # warm-up
        for _ in range(args.rounds):
            proxy.shadow(0)  # also cancels the hung shadows of the previous round
            off.append(measured(proxy, per_round, 1, legacy_ms))
            proxy.shadow(100)
            before = proxy.statz()
            on.append(measured(proxy, per_round, 1, legacy_ms))
            after = proxy.statz()
            refused = skipped(before, after)
            counts["launched"] = counts.get("launched", 0) + per_round - sum(refused.values())
            for reason, count in refused.items():
                counts[reason] = counts.get(reason, 0) + count
        proxy.shadow(0)
        a, b = merge(off), merge(on)
        a50 = pct(a.latencies, 0.5) * 1000
        label = "at once" if not legacy_ms else f"in {legacy_ms:.0f} ms"
        for name, cell in (("shadow off", a), ("shadow 100 %", b)):
            p50, p99 = pct(cell.latencies, 0.5) * 1000, pct(cell.latencies, 0.99) * 1000
            lag = statistics.median(cell.lags) if cell.lags else 0.0
            added = f"{p50 - a50:+9.3f}ms" if cell is b else " " * 11
            print(f"{label:<16}{name:<14}{p50:>7.3f}ms{p99:>7.3f}ms{lag:>7.2f}ms{added}   "
                  f"{counts if cell is b else ''}", flush=True)
    print("aim: legacy p50 added by shadow 100 % <= +0.100 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=9000,
                        help="saturation requests per cell (split over the rounds)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=3000,
                        help="one-at-a-time requests per cell (split over the rounds)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 300.0, 600.0],
                        help="open-loop rates of the lag survey (requests/s)")
    parser.add_argument("--survey-seconds", type=float, default=5.0)
    args = parser.parse_args()

    redis = RedisServer().start()
    legacy_port, orch_port = free_port(), free_port()
    legacy = start_fake_upstream(legacy_port, {})
    orchestrator = start_fake_upstream(orch_port, {"answer": "orchestrator"})
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{legacy_port}/v1/models").is_success)
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{orch_port}/v1/models").is_success)
    default_lag = ShadowSection().shed_lag_ms
    proxies = [start_proxy("on", redis, legacy_port, orch_port, {}),
               start_proxy("off", redis, legacy_port, orch_port, {"shed_lag_ms": 0}),
               start_proxy("launch", redis, legacy_port, orch_port,
                           {"max_concurrency": 5000})]
    try:
        print(f"llm-shadow shedding: shed_lag_ms {default_lag} (default), cpus="
              f"{os.cpu_count()}; legacy and orchestrator are fake servers on loopback")
        idle = [proxies[0].statz()["pressure"]["lag_max_ms"] for _ in range(4)
                if time.sleep(0.3) is None]
        print(f"idle event-loop lag (max over 1 s, 4 samples): "
              f"{', '.join(f'{x:.2f}' for x in idle)} ms")
        lag_survey(proxies[0], args.rates, args.survey_seconds)
        saturation(args, proxies[0], proxies[1])
        one_at_a_time(args, proxies[2], orch_port)
    finally:
        for process in [p.process for p in proxies] + [legacy, orchestrator]:
            process.terminate()
            process.wait()
        redis.cleanup()


if __name__ == "__main__":
    main()
