"""Soak: an operator's worst afternoon, bounded in time. Shadow 100 % and divert 25 % to
an external orchestrator that at random answers, is slow, stalls mid-body, returns 500,
hangs, resets, or dies in the middle of a body, streamed and not, over OpenAI chat,
Anthropic messages and Responses; Redis (append-only file on) killed and restarted twice.

Every answer the clients get is checked against what each side means to say (legacy's
`Answer to: <prompt>`, the orchestrator's `orchestrator: <prompt>`, see
`tests.fakes.chaos`), and every diverted stream the clients saw cut is matched against
the proxy's own count (/statz `divert.streams_cut`). Prints:

- requests, by kind, and who answered;
- lost: non-streamed requests without a whole, valid answer (must be 0), and streams cut
  (each must be a diverted one, and the proxy must have counted every one);
- wrong answers: neither side's text, or a stream spliced from both (must be 0);
- fallbacks by reason, and the orchestrator's faults as served;
- the proxy's RSS and open descriptors at the start (after a warm-up, idle) and the end
  (idle again, once the shadows left hanging ended at their deadline), and the peak;
- the flag state after both restarts (must be `ready`, at the version written).

    python bench/soak.py                 # 60 s
    python bench/soak.py --duration 12 --clients 12   # the short form tests/test_soak.py runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.processes import start_fake_upstream  # noqa: E402
from bench.processes import start_proxy as launch_proxy  # noqa: E402
from proxy.decision import bucket_of  # noqa: E402
from proxy.flags.writer import update_flags_sync  # noqa: E402
from tests.fakes.servers import RedisServer, clean_env, free_port, wait_for  # noqa: E402

DIVERT_PERCENT = 25.0
WEIGHTS = {"answer": 40, "slow": 8, "stall": 8, "status_500": 8, "hang": 4, "reset": 8,
           "cut": 10, "cut_unframed": 6, "reset_mid": 8}
APIS = {"chat": "/openai/v1/chat/completions", "anthropic": "/anthropic/v1/messages",
        "responses": "/openai/v1/responses"}


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    cut_not_diverted: int = 0


@dataclass
class SoakResult:
    duration: float
    tally: Tally
    fallbacks: dict[str, int]
    streams_cut: dict[str, int]
    faults: dict[str, int]
    rss_kib: tuple[int, int, int]  # start, end, peak
    fds: tuple[int, int]
    flags_state: str
    flags_version: int
    expected_version: int
    restarts: int

    @property
    def cuts_counted(self) -> int:
        return sum(self.streams_cut.values())

    def report(self) -> str:
        t = self.tally
        total = t.requests["whole"] + t.requests["stream"]
        lines = [
            f"requests            {total} (non-streamed {t.requests['whole']}, streamed "
            f"{t.requests['stream']}; diverted buckets {t.requests['diverted']})",
            f"answered by         {dict(t.answered_by)}",
            f"lost                non-streamed {t.lost['whole']}, streamed cut "
            f"{t.lost['stream']} (proxy counted {self.cuts_counted}: {self.streams_cut}; "
            f"cut streams not diverted: {t.cut_not_diverted})",
            f"wrong answers       {len(t.wrong)}" + (f" e.g. {t.wrong[:3]}" if t.wrong else ""),
            f"fallbacks           {self.fallbacks}",
            f"orchestrator faults {self.faults}",
            f"proxy RSS           start {self.rss_kib[0] / 1024:.1f} MiB, end "
            f"{self.rss_kib[1] / 1024:.1f} MiB, peak {self.rss_kib[2] / 1024:.1f} MiB",
            f"proxy descriptors   start {self.fds[0]}, end {self.fds[1]}",
            f"redis               killed and restarted {self.restarts} times; flags after: "
            f"{self.flags_state} (version {self.flags_version}, written "
            f"{self.expected_version})",
        ]
        return "\n".join(lines)


# --- what each side means to say, and what a client got --------------------------------


def prompt_of(i: int) -> str:
    return f"soak question {i}"


def body_for(api: str, i: int, stream: bool) -> dict[str, Any]:
    prompt = prompt_of(i)
    if api == "responses":
        return {"model": "gpt-4o-mini", "input": prompt, "stream": stream}
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": prompt}],
                            "stream": stream}
    if api == "anthropic":
        body["max_tokens"] = 64
    return body


def whole_text(api: str, data: Any) -> str | None:
    try:
        if api == "chat":
            return str(data["choices"][0]["message"]["content"])
        if api == "anthropic":
            return str(data["content"][0]["text"])
        return str(data["output"][0]["content"][0]["text"])
    except (KeyError, IndexError, TypeError):
        return None


def stream_text(api: str, raw: bytes) -> tuple[str, bool]:
    """The text of a stream and whether it reached its final event."""
    text, complete = [], False
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            complete = True
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        kind = event.get("type")
        if api == "chat":
            for choice in event.get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
        elif kind == "content_block_delta":
            text.append(event["delta"].get("text", ""))
        elif kind == "response.output_text.delta":
            text.append(event.get("delta", ""))
        if kind in ("message_stop", "response.completed"):
            complete = True
    return "".join(text), complete


def judge(tally: Tally, i: int, stream: bool, diverted: bool, text: str | None,
          complete: bool) -> None:
    legacy, orchestrator = f"Answer to: {prompt_of(i)}", f"orchestrator: {prompt_of(i)}"
    kind = "stream" if stream else "whole"
    if complete and text in (legacy, orchestrator):
        tally.answered_by["legacy" if text == legacy else "orchestrator"] += 1
        return
    if not complete:
        tally.lost[kind] += 1
        if stream and not diverted:
            tally.cut_not_diverted += 1
        if text is None or legacy.startswith(text) or orchestrator.startswith(text):
            return  # cut, but nothing spliced or wrong in what arrived
    tally.wrong.append(f"#{i} {kind}: {text!r}")


# --- the load -------------------------------------------------------------------------


async def one(session: aiohttp.ClientSession, base: str, tally: Tally, i: int,
              rng: random.Random, fault: str | None = None) -> None:
    api = rng.choices(list(APIS), [3, 1, 1])[0]
    stream = rng.random() < 0.5
    conversation = f"soak-{i}-{rng.random()}"
    diverted = bucket_of(conversation) < DIVERT_PERCENT * 100
    tally.requests["stream" if stream else "whole"] += 1
    tally.requests["diverted"] += diverted
    raw, failed = b"", False
    try:
        headers = {"x-conversation-id": conversation, **({"x-chaos": fault} if fault else {})}
        async with session.post(base + APIS[api], json=body_for(api, i, stream),
                                headers=headers) as response:
            try:
                async for chunk in response.content.iter_any():
                    raw += chunk
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                    ConnectionError):
                failed = True
            status = response.status
    except (TimeoutError, aiohttp.ClientError, ConnectionError):
        failed, status = True, 0
    if stream:
        text, complete = stream_text(api, raw)
        judge(tally, i, True, diverted, text, complete and not failed and status == 200)
        return
    try:
        text = whole_text(api, orjson.loads(raw)) if status == 200 and not failed else None
    except orjson.JSONDecodeError:
        text = None
    judge(tally, i, False, diverted, text, text is not None)


async def load(base: str, tally: Tally, until: float, clients: int, seed: int,
               fault: str | None = None) -> None:
    """`clients` clients sending back to back until `until`; `fault` forces one mode of
    the orchestrator (the warm-up asks for plain answers)."""
    counter = iter(range(10**9))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def client(k: int) -> None:
            rng = random.Random(seed * 1000 + k)
            while time.monotonic() < until:
                await one(session, base, tally, next(counter), rng, fault)

        await asyncio.gather(*(client(k) for k in range(clients)))


# --- the cast -------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_chaos(port: int, seed: int) -> subprocess.Popen[bytes]:
    code = ("import threading; from tests.fakes.chaos import ChaosOrchestrator; "
            f"ChaosOrchestrator(weights={WEIGHTS!r}, seed={seed}, slow_seconds=0.5, "
            f"stall_seconds=3.0, port={port}).start(); threading.Event().wait()")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=clean_env())


def start_proxy(redis: RedisServer, legacy: int, chaos: int, log: Path,
                port: int, admin: int) -> subprocess.Popen[bytes]:
    routes = [{"prefix": "/openai", "upstream": f"http://127.0.0.1:{legacy}"},
              {"prefix": "/anthropic", "upstream": f"http://127.0.0.1:{legacy}",
               "provider": "anthropic"}]
    config = {"proxy": {"listen": {"port": port}, "admin": {"port": admin}, "routes": routes},
              "redis": {"url": redis.url, "key_prefix": "soak"},
              "orchestrator": {"endpoint": f"http://127.0.0.1:{chaos}"},
              "shadow": {"budget_usd_per_hour": 1e9, "timeout_seconds": 10.0,
                         "shed_lag_ms": 0},
              "divert": {"fallback_after_seconds": 2.0},
              "comparison": {"noise_sample_percent": 0,
                             "policy_file": str(REPO / "policies" / "divergence.json")},
              "flags": {"poll_interval": 0.25}}
    return launch_proxy(config, log=log, ready=False)


def run(duration: float = 60.0, clients: int = 16, seed: int = 1,
        out: Any = None) -> SoakResult:
    def say(text: str) -> None:
        if out is not None:
            print(text, file=out, flush=True)

    redis = RedisServer(appendonly=True).start()
    legacy_port, chaos_port, port, admin = free_port(), free_port(), free_port(), free_port()
    log = Path(tempfile.mkdtemp(prefix="llm-shadow-soak-")) / "proxy.log"
    legacy = start_fake_upstream(legacy_port, backlog=2048)
    chaos = start_chaos(chaos_port, seed)
    proxy = start_proxy(redis, legacy_port, chaos_port, log, port, admin)
    admin_url = f"http://127.0.0.1:{admin}"
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{legacy_port}/v1/models").is_success,
                 timeout=30)
        wait_for(lambda: httpx.get(admin_url + "/readyz").status_code == 200, timeout=30)
        version = update_flags_sync(redis.url, "soak", {"shadow_percent": 100,
                                                        "divert_percent": DIVERT_PERCENT},
                                    actor="soak", reason="soak").version
        wait_for(lambda: httpx.get(admin_url + "/flagz").json()["version"] >= version)
        say(f"llm-shadow soak: {duration:.0f} s, {clients} clients, shadow 100 %, divert "
            f"{DIVERT_PERCENT:.0f} % to a faulty orchestrator (faults {WEIGHTS}); Redis with "
            f"an append-only file killed at {duration / 3:.0f} s and {2 * duration / 3:.0f} s, "
            f"back 2 s later; proxy log {log}")
        # Warm-up (plain answers): pools, caches and lazy imports are in place before
        # the start is measured, idle, like the end.
        base = f"http://127.0.0.1:{port}"
        asyncio.run(load(base, Tally(), time.monotonic() + 3.0, clients, seed + 7, "answer"))
        wait_for(lambda: httpx.get(admin_url + "/statz").json()["shadow"]["in_flight"] == 0,
                 timeout=60, message="warm-up shadows drained")
        start_mark = (rss_kib(proxy.pid), open_fds(proxy.pid))
        before = httpx.get(admin_url + "/statz").json()["divert"]
        faults_before = _served(chaos_port)
        tally = Tally()
        rss: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.25):
                rss.append(rss_kib(proxy.pid))

        def outages(started: float) -> None:
            for at in (duration / 3, 2 * duration / 3):
                if stop.wait(max(0.0, started + at - time.monotonic())):
                    return
                redis.stop()
                if stop.wait(2.0):
                    redis.start()
                    return
                redis.start()

        started = time.monotonic()
        threads = [threading.Thread(target=watch, daemon=True),
                   threading.Thread(target=outages, args=(started,), daemon=True)]
        for thread in threads:
            thread.start()
        asyncio.run(load(base, tally, started + duration, clients, seed))
        elapsed = time.monotonic() - started
        threads[1].join()
        stop.set()
        threads[0].join()
        # Hung shadows end at their own deadline; then the process is measured again.
        wait_for(lambda: httpx.get(admin_url + "/statz").json()["shadow"]["in_flight"] == 0,
                 timeout=60, message="shadows drained")
        wait_for(lambda: httpx.get(admin_url + "/flagz").json()["state"] == "ready",
                 timeout=30, message="flags ready after the restarts")
        end = (rss_kib(proxy.pid), open_fds(proxy.pid))
        stats = httpx.get(admin_url + "/statz").json()["divert"]
        flagz = httpx.get(admin_url + "/flagz").json()
        result = SoakResult(
            duration=elapsed, tally=tally,
            fallbacks=_delta(before["fallbacks"], stats["fallbacks"]),
            streams_cut=_delta(before["streams_cut"], stats["streams_cut"]),
            faults=_delta(faults_before, _served(chaos_port)),
            rss_kib=(start_mark[0], end[0], max(rss, default=end[0])),
            fds=(start_mark[1], end[1]), flags_state=flagz["state"],
            flags_version=flagz["version"], expected_version=version, restarts=2)
        say(result.report())
        return result
    finally:
        for process in (proxy, chaos, legacy):
            process.terminate()
            process.wait(timeout=30)
        redis.cleanup()


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0)}


def _served(port: int) -> dict[str, int]:
    """The faults the orchestrator served (it counts in its own process)."""
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/__chaos/served", timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = run(args.duration, args.clients, args.seed, out=sys.stdout)
    ok = (result.tally.lost["whole"] == 0 and not result.tally.wrong
          and result.tally.lost["stream"] == result.cuts_counted
          and result.tally.cut_not_diverted == 0 and result.flags_state == "ready")
    print("verdict             " + ("PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
