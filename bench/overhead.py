"""Overhead of the proxy on the legacy path: the same load direct to a fake upstream and
through `llm-shadow serve`, side by side in one run.

Prints added latency p50/p99 (proxy minus direct), the time-to-first-byte delta for
streams, and the throughput ratio proxy/direct, one request at a time and at a fixed
concurrency, non-streaming and streaming. Rounds alternate direct and proxied runs so that
machine noise hits both sides alike.

    python bench/overhead.py                      # defaults: 2000 requests per cell
    python bench/overhead.py --transport httpx    # compare the legacy client's transport
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.processes import start_fake_upstream  # noqa: E402
from bench.processes import start_proxy as launch_proxy  # noqa: E402
from tests.fakes.servers import free_port, wait_for  # noqa: E402

CHAT = {"model": "bench", "messages": [{"role": "user", "content": "benchmark the proxy"}]}
STREAM = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}


@dataclass
class Cell:
    latencies: list[float]
    ttfb: list[float]
    elapsed: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_cell(base: str, path: str, body: dict, n: int, concurrency: int,
                   stream: bool) -> Cell:
    latencies: list[float] = []
    ttfbs: list[float] = []
    payload = json.dumps(body).encode()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                start = time.perf_counter()
                async with session.post(base + path, data=payload,
                                        headers={"content-type": "application/json"}) as resp:
                    first = None
                    async for _chunk in resp.content.iter_any():
                        if first is None:
                            first = time.perf_counter()
                    assert resp.status == 200, resp.status
                end = time.perf_counter()
                latencies.append(end - start)
                ttfbs.append((first or end) - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Cell(latencies, ttfbs, elapsed)


def start_proxy(upstream: str, transport: str, parser: str) -> tuple[subprocess.Popen[bytes], int]:
    port, admin = free_port(), free_port()
    config = {"proxy": {"listen": {"port": port}, "admin": {"port": admin},
                        "transport": transport, "http_parser": parser,
                        "routes": [{"prefix": "/openai", "upstream": upstream}]},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    return launch_proxy(config), port


async def compare(direct: str, proxied: str, n: int, concurrency: int, stream: bool,
                  rounds: int) -> dict[str, float]:
    body = STREAM if stream else CHAT
    d_cells, p_cells = [], []
    per_round = max(1, n // rounds)
    await run_cell(direct, "/v1/chat/completions", body, 200, concurrency, stream)  # warm
    await run_cell(proxied, "/openai/v1/chat/completions", body, 200, concurrency, stream)
    for _ in range(rounds):
        d_cells.append(await run_cell(direct, "/v1/chat/completions", body, per_round,
                                      concurrency, stream))
        p_cells.append(await run_cell(proxied, "/openai/v1/chat/completions", body, per_round,
                                      concurrency, stream))
    d_lat = [x for c in d_cells for x in c.latencies]
    p_lat = [x for c in p_cells for x in c.latencies]
    d_ttfb = [x for c in d_cells for x in c.ttfb]
    p_ttfb = [x for c in p_cells for x in c.ttfb]
    d_rps = statistics.median(c.rps for c in d_cells)
    p_rps = statistics.median(c.rps for c in p_cells)
    return {
        "direct_p50_ms": pct(d_lat, 0.5) * 1000, "proxy_p50_ms": pct(p_lat, 0.5) * 1000,
        "added_p50_ms": (pct(p_lat, 0.5) - pct(d_lat, 0.5)) * 1000,
        "added_p99_ms": (pct(p_lat, 0.99) - pct(d_lat, 0.99)) * 1000,
        "ttfb_delta_p50_ms": (pct(p_ttfb, 0.5) - pct(d_ttfb, 0.5)) * 1000,
        "direct_rps": d_rps, "proxy_rps": p_rps, "throughput_ratio": p_rps / d_rps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--transport", default="aiohttp", choices=["aiohttp", "httpx"])
    parser.add_argument("--parser", default="h11", choices=["h11", "httptools"])
    args = parser.parse_args()

    up_port = free_port()
    upstream = start_fake_upstream(up_port)
    direct = f"http://127.0.0.1:{up_port}"
    import httpx

    wait_for(lambda: httpx.get(direct + "/v1/models").status_code == 200, timeout=30)
    proxy, port = start_proxy(direct, args.transport, args.parser)
    proxied = f"http://127.0.0.1:{port}"
    print(f"llm-shadow overhead: transport={args.transport} parser={args.parser} "
          f"requests/cell={args.requests} rounds={args.rounds} cpus={os.cpu_count()}")
    print(f"{'mode':<10}{'conc':>5}{'direct p50':>12}{'proxy p50':>11}{'added p50':>11}"
          f"{'added p99':>11}{'ttfb Δp50':>11}{'direct rps':>12}{'proxy rps':>11}{'ratio':>7}")
    try:
        for stream in (False, True):
            for concurrency in args.concurrency:
                r = asyncio.run(compare(direct, proxied, args.requests, concurrency, stream,
                                        args.rounds))
                mode = "stream" if stream else "json"
                print(f"{mode:<10}{concurrency:>5}{r['direct_p50_ms']:>10.2f}ms"
                      f"{r['proxy_p50_ms']:>9.2f}ms{r['added_p50_ms']:>9.2f}ms"
                      f"{r['added_p99_ms']:>9.2f}ms{r['ttfb_delta_p50_ms']:>9.2f}ms"
                      f"{r['direct_rps']:>12.0f}{r['proxy_rps']:>11.0f}"
                      f"{r['throughput_ratio']:>7.2f}", flush=True)
    finally:
        proxy.terminate()
        upstream.terminate()
        proxy.wait()
        upstream.wait()


if __name__ == "__main__":
    main()
