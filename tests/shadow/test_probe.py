"""The pressure probe: it measures its own timer's lateness, reads throttling from a
cgroup `cpu.stat` when there is one, and feeds both to the shedder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from proxy.shadow.probe import PressureProbe, find_cpu_stat
from proxy.shadow.shedding import Shedder


def test_throttling_from_cpu_stat_trips_the_shedder(tmp_path: Path) -> None:
    stat = tmp_path / "cpu.stat"
    stat.write_text("nr_periods 10\nnr_throttled 0\nthrottled_usec 0\n")
    probe = PressureProbe(Shedder(5.0), cpu_stat=str(stat))

    async def go() -> None:
        probe.start()
        await probe.aclose()

    asyncio.run(go())
    for step in range(1, 4):  # 20 ms throttled between probes, no lag
        stat.write_text(f"nr_periods 10\nnr_throttled {step}\nthrottled_usec {step * 20000}\n")
        probe.observe(0.2)
    assert probe.shedder.shedding
    stats = probe.stats()
    assert stats["throttled_ms"] == 60.0 and stats["shedding"] is True


def test_without_a_cgroup_file_throttling_is_not_used(tmp_path: Path) -> None:
    probe = PressureProbe(Shedder(5.0), cpu_stat=str(tmp_path / "missing"))
    probe.observe(0.1)
    assert not probe.shedder.shedding
    listing = tmp_path / "cgroup"
    listing.write_text("0::/pod\n")
    assert find_cpu_stat(str(listing), root=str(tmp_path)) is None
    (tmp_path / "pod").mkdir()
    (tmp_path / "pod" / "cpu.stat").write_text("nr_throttled 0\nthrottled_usec 0\n")
    assert find_cpu_stat(str(listing), root=str(tmp_path)) == str(tmp_path / "pod/cpu.stat")


def test_a_blocked_loop_is_seen_as_lag() -> None:
    probe = PressureProbe(Shedder(5.0), interval=0.01, cpu_stat="/nonexistent")

    async def go() -> None:
        probe.start()
        while len(probe.recent) < 2:
            await asyncio.sleep(0.005)
        for _ in range(4):  # block the loop: every probe fires late
            time.sleep(0.05)
            await asyncio.sleep(0)
            seen = len(probe.recent)
            while len(probe.recent) == seen:
                await asyncio.sleep(0.001)
        await probe.aclose()

    asyncio.run(go())
    assert probe.shedder.shedding
    assert probe.stats()["lag_max_ms"] >= 5.0
