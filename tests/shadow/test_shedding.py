"""The shedder's state machine (hysteresis on lag and throttling), the cgroup `cpu.stat`
parser, and where the file is looked for."""

from __future__ import annotations

import pytest

from proxy.shadow.shedding import CpuStat, Shedder, cpu_stat_paths, parse_cpu_stat, throttled_ms

T = 5.0  # shed_lag_ms in the tables below


@pytest.mark.parametrize("lags,expected", [
    ([0.1, 0.3, 0.2], [False, False, False]),
    ([20.0, 0.1, 0.1, 0.1, 0.1, 0.1], [False] * 6),  # a lone late probe does not trip
    ([6.0, 6.0, 6.0], [False, False, True]),  # three late probes in a row do
    ([6.0, 0.1, 6.0, 0.1, 6.0], [False, False, False, False, True]),  # 3 of the last 5
    ([6.0, 0.1, 0.1, 6.0, 0.1, 0.1, 6.0], [False] * 7),  # 2 of any 5: no
    # shedding ends after 10 calm probes (below half the threshold) in a row
    ([9.0] * 3 + [1.0] * 10, [False, False] + [True] * 10 + [False]),
    # a probe between half and the threshold is not calm: the count starts again
    ([9.0] * 3 + [1.0] * 9 + [4.0] + [1.0] * 10,
     [False, False] + [True] * 20 + [False]),
    # a late probe while shedding starts the count again too
    ([9.0] * 3 + [1.0] * 5 + [9.0] + [1.0] * 10, [False, False] + [True] * 16 + [False]),
], ids=["calm", "one spike", "three late", "3 of 5", "2 of 5", "recovers",
        "not calm enough", "late again"])
def test_hysteresis_on_lag(lags: list[float], expected: list[bool]) -> None:
    shedder = Shedder(T)
    assert [shedder.observe(lag) for lag in lags] == expected


def test_throttling_counts_as_pressure() -> None:
    shedder = Shedder(T)
    states = [shedder.observe(0.1, throttled_ms=20.0) for _ in range(3)]
    assert states == [False, False, True]
    assert shedder.episodes == 1


def test_episodes_count_each_start() -> None:
    shedder = Shedder(T, calm_probes=2)
    for lag in [9.0] * 3 + [0.1] * 2 + [9.0] * 3:
        shedder.observe(lag)
    assert shedder.shedding and shedder.episodes == 2


def test_zero_turns_shedding_off() -> None:
    shedder = Shedder(0.0)
    assert not any(shedder.observe(1000.0) for _ in range(10))


@pytest.mark.parametrize("text,expected", [
    ("usage_usec 10\nnr_periods 5\nnr_throttled 2\nthrottled_usec 1500\n", CpuStat(2, 1500)),
    ("nr_periods 5\nnr_throttled 3\nthrottled_time 2500000\n", CpuStat(3, 2500)),  # v1, ns
    ("usage_usec 10\nuser_usec 5\nsystem_usec 5\n", None),  # the root cgroup: no limit
    ("", None),
    ("nr_throttled x\n", None),
    ("nr_throttled 1\n", None),
], ids=["v2", "v1", "root", "empty", "garbage", "no time"])
def test_parse_cpu_stat(text: str, expected: CpuStat | None) -> None:
    assert parse_cpu_stat(text) == expected


@pytest.mark.parametrize("before,after,expected", [
    (CpuStat(1, 1000), CpuStat(2, 4500), 3.5),
    (None, CpuStat(2, 4500), 0.0),
    (CpuStat(1, 1000), None, 0.0),
    (CpuStat(9, 9000), CpuStat(0, 0), 0.0),  # a reset counter is no throttling
])
def test_throttled_ms(before: CpuStat | None, after: CpuStat | None, expected: float) -> None:
    assert throttled_ms(before, after) == expected


@pytest.mark.parametrize("listing,first", [
    ("0::/kubepods/pod1/c1\n", "/sys/fs/cgroup/kubepods/pod1/c1/cpu.stat"),
    ("0::/\n", "/sys/fs/cgroup/cpu.stat"),
    ("4:memory:/x\n2:cpuacct:/\n1:cpu:/docker/abc\n0::/\n",
     "/sys/fs/cgroup/cpu/docker/abc/cpu.stat"),
    ("3:cpu,cpuacct:/pod\n", "/sys/fs/cgroup/cpu,cpuacct/pod/cpu.stat"),
], ids=["v2", "v2 root", "v1 hybrid", "v1 joint"])
def test_where_cpu_stat_is_looked_for(listing: str, first: str) -> None:
    paths = cpu_stat_paths(listing)
    assert paths[0] == first
    assert len(paths) == len(set(paths))


def test_no_cpu_controller_means_no_paths() -> None:
    assert cpu_stat_paths("4:memory:/x\n5:devices:/\n") == []
