"""Redis memory of the comparison report: what the fine buckets and the kept examples
cost beside the hourly buckets.

Starts a redis-server and writes, through the real `ReportStore` (as the replicas'
report buffers do: one `record_many` per half second), two hours of simulated traffic
on one route: `--rate` compared requests per second, each with a label and reason, a
latency delta, legacy and orchestrator costs, three orchestrator models' calls, a 10 %
noise sample, and a kept example for every major/minor pair (`keep_examples` 10). The
clock is simulated, so two hours take seconds. Then it prints, per kind of key, how
many there are, their size (`MEMORY USAGE`) and encoding, and the total per route for
the default retentions (fine: 10 s buckets for 2 h; hourly: 1 h buckets for 7 days).

It also times the writes side by side, with and without the fine tier (same entries,
alternating), since every entry now goes to two buckets.

    python bench/report_memory.py               # 5 compared requests/s
    python bench/report_memory.py --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from proxy.comparison import Comparison  # noqa: E402
from proxy.redisclient import redis_client  # noqa: E402
from proxy.report.aggregate_store import ReportStore  # noqa: E402
from proxy.report.entry import ModelUse, ReportEntry, RoleCost  # noqa: E402
from proxy.report.example import MAX_SIDE_BYTES, Example, Side  # noqa: E402
from tests.fakes.servers import RedisServer  # noqa: E402

START = 1_800_000_000.0
ROUTE = "/openai"
MODELS = ("qwen-max", "deepseek-chat", "mistral-large")
LABELS = (("identical", "identical", 0.0), ("equivalent", "text_edit", 0.05),
          ("minor", "text_edit", 0.3), ("minor", "fact_added", 0.4),
          ("major", "fact_changed", 1.0), ("major", "json_value_changed", 1.0))
WEIGHTS = (60, 20, 8, 2, 8, 2)
ANSWER = ("The capital of France is Paris. It has been the capital since the tenth "
          "century, apart from a few short periods, and it is the seat of the government, "
          "the parliament and the presidency. ") * 3  # ~600 bytes


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def entry(rng: random.Random, request_id: str, at: float, big: bool) -> list[ReportEntry]:
    label, reason, score = rng.choices(LABELS, WEIGHTS)[0]
    comparison = Comparison(label, score, reason=reason)  # type: ignore[arg-type]
    chosen = rng.sample(MODELS, 2)
    uses = tuple(ModelUse(m, rng.choice(("valid",) * 9 + ("timeout",)),
                          rng.uniform(0.1, 0.4), 0.0002, used=i == 0)
                 for i, m in enumerate(chosen))
    text = "x" * MAX_SIDE_BYTES if big else ANSWER
    example = (Example(ROUTE, request_id, at, label, reason, score, Side(text, "stop"),
                       Side(text.replace("Paris", "Lyon"), "stop"),
                       evidence=("Paris → Lyon",), trace_id="a" * 32, models=(chosen[0],),
                       legacy_model="gpt-4o-mini")
               if label in ("major", "minor") else None)
    out = [ReportEntry(ROUTE, request_id, at=at, model="gpt-4o-mini", comparison=comparison,
                       latency_delta_s=rng.gauss(0.05, 0.1), orchestrator="ok",
                       contributors=(chosen[0],), example=example),
           ReportEntry(ROUTE, request_id, at=at, costs=(
               RoleCost("legacy", 0.00002), RoleCost("orchestrator", 0.0002),
               RoleCost("orchestrator", 0.0002)), models=uses)]
    if rng.random() < 0.1:
        out.append(ReportEntry(ROUTE, request_id, at=at, noise=Comparison(
            "equivalent", 0.05, reason="text_edit"), costs=(RoleCost("noise", 0.00002),)))
    return out


async def fill(url: str, prefix: str, rate: float, hours: float, big: bool) -> None:
    clock = Clock()
    client = redis_client(url, connect_timeout=1.0, socket_timeout=10.0)
    store = ReportStore(client, prefix, clock=clock, keep_examples=10, budget=10.0)
    rng = random.Random(7)
    count = 0
    for tick in range(int(hours * 3600 * 2)):  # one flush per half second
        clock.now = START + tick / 2
        batch = []
        for _ in range(rng.choices((int(rate / 2), int(rate / 2) + 1),
                                   (1 - rate / 2 % 1, rate / 2 % 1))[0]):
            count += 1
            batch += entry(rng, f"req-{count:012x}", clock.now, big)
        if batch:
            assert await store.record_many(batch)
    await client.aclose()


async def sizes(url: str, prefix: str) -> dict[str, list[tuple[int, str]]]:
    """Per kind of key: (bytes, "encoding, N fields/members")."""
    client = redis_client(url, connect_timeout=1.0, socket_timeout=10.0)
    kinds: dict[str, list[tuple[int, str]]] = defaultdict(list)
    async for key in client.scan_iter(match=f"{prefix}:report:*", count=1000):
        name = key.decode()
        kind = name.split(":")[2]
        usage = await client.memory_usage(name) or 0
        encoding = (await client.object("encoding", name)).decode()  # type: ignore[union-attr]
        kinds[kind].append((int(usage), encoding))
        if kind in ("bucket", "fine"):
            kinds[kind + " fields"].append((await client.hlen(name), ""))
    await client.aclose()
    return kinds


async def listpack_entries(url: str) -> str:
    client = redis_client(url, connect_timeout=1.0, socket_timeout=10.0)
    value = (await client.config_get("hash-max-listpack-entries"))["hash-max-listpack-entries"]
    await client.aclose()
    return str(value.decode() if isinstance(value, bytes) else value)


async def configure(url: str, entries: int) -> None:
    client = redis_client(url, connect_timeout=1.0, socket_timeout=10.0)
    await client.config_set("hash-max-listpack-entries", entries)
    await client.aclose()


async def write_times(url: str, rate: float) -> tuple[float, float]:
    """Median seconds per flush (rate/2 requests' entries), with and without fine buckets,
    alternating on the same batches."""
    client = redis_client(url, connect_timeout=1.0, socket_timeout=10.0)
    clock = Clock()
    both = ReportStore(client, "bench-times-a", clock=clock, budget=10.0)
    hourly = ReportStore(client, "bench-times-b", clock=clock, budget=10.0,
                         fine_bucket_seconds=0)
    rng = random.Random(3)
    times: dict[str, list[float]] = {"both": [], "hourly": []}
    for tick in range(400):
        clock.now = START + tick / 2
        batch = [e for i in range(max(1, int(rate / 2)))
                 for e in entry(rng, f"t-{tick}-{i}", clock.now, False)]
        for name, store in (("both", both), ("hourly", hourly))[::1 if tick % 2 else -1]:
            began = time.perf_counter()
            assert await store.record_many(batch)
            times[name].append(time.perf_counter() - began)
    await client.aclose()
    return statistics.median(times["both"]), statistics.median(times["hourly"])


def show(title: str, kinds: dict[str, list[tuple[int, str]]], keep: dict[str, int]) -> None:
    print(title)
    per_route = 0.0
    for kind, rows in sorted(kinds.items()):
        usage = [u for u, _ in rows]
        if kind.endswith(" fields"):
            print(f"  {kind:<13} mean {statistics.mean(usage):,.0f}, max {max(usage)} per hash "
                  "(over 128: hashtable encoding, about 2-3x the bytes)")
            continue
        encodings = ",".join(sorted({e for _, e in rows}))
        kept = keep.get(kind, len(rows))
        total = statistics.mean(usage) * kept
        per_route += total
        print(f"  {kind:<13} {len(rows):>5} keys  mean {statistics.mean(usage):>9,.0f} B  "
              f"max {max(usage):>9,} B  ({encodings})  at retention: {kept} keys, "
              f"{total / 1024:,.0f} KiB")
    print(f"  per route at the default retentions: {per_route / 1024 / 1024:,.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="compared requests per second")
    parser.add_argument("--listpack-entries", type=int, default=None,
                        help="set Redis's hash-max-listpack-entries first (128 in the "
                             "stock redis.conf; some builds default to 512)")
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        if args.listpack_entries is not None:
            asyncio.run(configure(server.url, args.listpack_entries))
        asyncio.run(fill(server.url, "bench-typical", args.rate, 2.0, big=False))
        asyncio.run(fill(server.url, "bench-big", args.rate, 0.1, big=True))
        typical = asyncio.run(sizes(server.url, "bench-typical"))
        big = asyncio.run(sizes(server.url, "bench-big"))
        # Kept at the default retentions: fine 2 h of 10 s buckets, hourly 7 days.
        keep = {"fine": 720, "finetop": 720, "bucket": 168, "top": 168, "routes": 1,
                "examples": 2}
        limit = asyncio.run(listpack_entries(server.url))
        print(f"one route, {args.rate:g} compared requests/s, 3 orchestrator models, "
              f"10 % noise samples, keep_examples 10; hash-max-listpack-entries {limit}")
        show("typical answers (~600 B a side):", typical, keep)
        examples = [u for u, _ in big["examples"]]
        print(f"  examples at the bound (4 KiB a side): {max(examples):,} B per list of 10 "
              f"({max(examples) / 10:,.0f} B a pair)")
        with_fine, hourly_only = asyncio.run(write_times(server.url, args.rate))
        print(f"write per flush ({max(1, int(args.rate / 2))} requests' entries): "
              f"{with_fine * 1000:.2f} ms with fine buckets, {hourly_only * 1000:.2f} ms "
              f"hourly only ({with_fine / hourly_only:.2f}x)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
