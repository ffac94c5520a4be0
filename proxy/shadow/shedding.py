"""When to stop launching shadows: the process is under pressure.

Layer: pure core. A shadow doubles the work of a request, and it all runs on the one
event loop the legacy path runs on: when the process is saturated, the legacy path
queues behind shadow work. So the shedder watches the loop's lag (how late a periodic
timer fires: the time a ready request waits for the loop) and, where the cgroup reports
it, CPU throttling (time the kernel held the process back for exceeding its CPU quota),
and while either is too high no new shadow or noise resample starts (each skip is
counted with reason `overload`). Shadows already running finish.

The state machine, one step per probe (`observe`), with hysteresis so it does not flap:

    calm ──(pressure > shed_lag_ms in `trip` of the last `window` probes)──▶ shedding
    shedding ──(pressure < shed_lag_ms / 2 for `calm_probes` probes in a row)──▶ calm

where pressure = max(lag, throttled time since the previous probe), both in ms: being
throttled for longer than the lag we tolerate is the same harm, seen from the kernel.
Saturation keeps the loop late probe after probe; a lone late probe (a garbage
collection, a large body parsed, the first request's lazy set-up) does not trip it.
`shed_lag_ms` 0 turns shedding off. The request path reads only `shedding`, a plain
attribute.

`parse_cpu_stat` reads a cgroup `cpu.stat` (v2 `throttled_usec`, v1 `throttled_time` in
ns); `cpu_stat_paths` lists where this process's file may be, from `/proc/self/cgroup`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Shedder:
    """Hysteresis on the pressure readings; `shedding` is what the request path reads."""

    shed_lag_ms: float
    trip: int = 3
    window: int = 5
    calm_probes: int = 10
    shedding: bool = False
    episodes: int = 0  # times shedding started
    calm: int = 0  # calm probes in a row while shedding
    _high: deque[bool] = field(default_factory=deque, repr=False)

    def observe(self, lag_ms: float, throttled_ms: float = 0.0) -> bool:
        """One probe's readings; returns whether shadows are now shed."""
        if self.shed_lag_ms <= 0:
            return False
        pressure = max(lag_ms, throttled_ms)
        high = pressure > self.shed_lag_ms
        self._high.append(high)
        if len(self._high) > self.window:
            self._high.popleft()
        if high:
            self.calm = 0
            if not self.shedding and sum(self._high) >= self.trip:
                self.shedding = True
                self.episodes += 1
        elif self.shedding:
            self.calm = self.calm + 1 if pressure < self.shed_lag_ms / 2 else 0
            if self.calm >= self.calm_probes:
                self.shedding = False
                self.calm = 0
        return self.shedding


@dataclass(frozen=True, slots=True)
class CpuStat:
    """The throttling counters of a cgroup's `cpu.stat`."""

    nr_throttled: int
    throttled_us: int


def parse_cpu_stat(text: str) -> CpuStat | None:
    """The throttling counters, or None when the file has none (no CPU limit here, or
    the root cgroup)."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        try:
            fields[name] = int(value)
        except ValueError:
            continue
    if "nr_throttled" not in fields:
        return None
    if "throttled_usec" in fields:  # cgroup v2
        return CpuStat(fields["nr_throttled"], fields["throttled_usec"])
    if "throttled_time" in fields:  # cgroup v1, in nanoseconds
        return CpuStat(fields["nr_throttled"], fields["throttled_time"] // 1000)
    return None


def throttled_ms(before: CpuStat | None, after: CpuStat | None) -> float:
    """Time throttled between two readings (0 without both, or after a counter reset)."""
    if before is None or after is None:
        return 0.0
    return max(0, after.throttled_us - before.throttled_us) / 1000


def cpu_stat_paths(proc_self_cgroup: str, root: str = "/sys/fs/cgroup") -> list[str]:
    """Where this process's `cpu.stat` may be, most specific first: the v2 unified
    hierarchy (also mounted at `unified/` on hybrid hosts) and the v1 `cpu` controller,
    under the process's own cgroup path and at the mount's root (a container sees its
    own cgroup there)."""
    paths: list[str] = []
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        path = path.strip().rstrip("/")
        if controllers == "":
            mounts = [root, root + "/unified"]
        elif "cpu" in controllers.split(","):
            mounts = [root + "/" + controllers, root + "/cpu", root + "/cpu,cpuacct"]
        else:
            continue
        for mount in mounts:
            for folder in ((mount + path) if path else mount, mount):
                candidate = folder + "/cpu.stat"
                if candidate not in paths:
                    paths.append(candidate)
    return paths
