"""The pressure probe: a small periodic task that measures the event loop's lag and the
cgroup's CPU throttling, and feeds them to the shedder.

Layer: adapter (one asyncio task, one small file read per probe). Owned by the runtime:
`start()` in its lifespan, `aclose()` when it stops. Lag is how late a timer fires: the
task asks to wake after `interval` and measures (on the monotonic performance clock, not
the loop's, which uvloop keeps in whole milliseconds) how much later it actually ran;
that is how long any ready request was kept waiting for the loop at that moment.

The cgroup's `cpu.stat` is found once, at start (`proxy.shadow.shedding.cpu_stat_paths`);
no readable file with throttling counters means throttling is not used. Reading it is one
`open`/`read` of a few hundred bytes from a kernel pseudo-file, a few microseconds, so it
stays on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from pathlib import Path

from proxy.shadow.shedding import CpuStat, Shedder, cpu_stat_paths, parse_cpu_stat, throttled_ms

log = logging.getLogger("llm_shadow.shadow")

# 40 probes a second: saturation trips the shedder (3 late probes of 5) within about
# 0.1 s, so few shadows start after it began (each costs as much as a request); the probe
# itself costs 40 wake-ups a second (about 0.1 % of a core).
INTERVAL = 0.025
WINDOW = 40  # probes kept for the peak shown in /statz (one second)


class PressureProbe:
    def __init__(self, shedder: Shedder, *, interval: float = INTERVAL,
                 cpu_stat: str | None = None):
        self.shedder = shedder
        self.interval = interval
        self.lag_ms = 0.0
        self.recent: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self.throttled_ms = 0.0  # in total since the probe started
        self._cpu_stat_path = cpu_stat
        self._cpu_stat: CpuStat | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._cpu_stat_path is None:
            self._cpu_stat_path = find_cpu_stat()
        self._cpu_stat = self._read_cpu_stat()
        if self._cpu_stat_path is not None:
            log.info("CPU throttling read from %s", self._cpu_stat_path)
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="pressure-probe")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.observe(max(0.0, (time.perf_counter() - asked - self.interval) * 1000))

    def observe(self, lag_ms: float) -> None:
        """One probe: the lag just measured, and the throttling since the last one."""
        throttled = 0.0
        if self._cpu_stat_path is not None:
            current = self._read_cpu_stat()
            throttled = throttled_ms(self._cpu_stat, current)
            self._cpu_stat = current
            self.throttled_ms += throttled
        self.lag_ms = lag_ms
        self.recent.append(lag_ms)
        self.shedder.observe(lag_ms, throttled)

    def _read_cpu_stat(self) -> CpuStat | None:
        if self._cpu_stat_path is None:
            return None
        try:
            with open(self._cpu_stat_path) as stat:
                return parse_cpu_stat(stat.read())
        except OSError:
            return None

    def stats(self) -> dict[str, object]:
        """What /statz shows under `pressure`."""
        shedder = self.shedder
        return {"lag_ms": round(self.lag_ms, 3),
                "lag_max_ms": round(max(self.recent, default=0.0), 3),
                "shed_lag_ms": shedder.shed_lag_ms,
                "shedding": shedder.shedding,
                "shed_episodes": shedder.episodes,
                "throttled_ms": (round(self.throttled_ms, 3)
                                 if self._cpu_stat_path is not None else None)}


def find_cpu_stat(proc_self_cgroup: str = "/proc/self/cgroup",
                  root: str = "/sys/fs/cgroup") -> str | None:
    """The first `cpu.stat` of this process's cgroup that has throttling counters."""
    try:
        listing = Path(proc_self_cgroup).read_text()
    except OSError:
        return None
    for candidate in cpu_stat_paths(listing, root):
        try:
            if parse_cpu_stat(Path(candidate).read_text()) is not None:
                return candidate
        except OSError:
            continue
    return None
