"""Fixtures for the high-availability tests: a Sentinel group and a Redis Cluster of real
`redis-server` processes on loopback, one of each per module, always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.redisha import ClusterNodes, SentinelGroup


@pytest.fixture(scope="module")
def sentinel_group() -> Iterator[SentinelGroup]:
    group = SentinelGroup()
    try:
        yield group.start()
    finally:
        group.cleanup()


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterNodes]:
    nodes = ClusterNodes()
    try:
        yield nodes.start()
    finally:
        nodes.cleanup()
