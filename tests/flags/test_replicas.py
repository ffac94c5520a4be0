"""Replica status records and the convergence check used by `status` and `--wait`."""

from __future__ import annotations

import pytest

from proxy.flags.backoff import Backoff
from proxy.flags.replicas import ReplicaStatus, converge, parse_status, pending, sync_of


def replica(name: str, version: int, state: str = "ready") -> ReplicaStatus:
    return ReplicaStatus(replica_id=name, version=version, state=state, source="redis",
                         seen_at="now")


@pytest.mark.parametrize(("version", "state", "sync"), [
    (5, "ready", "current"), (5, "stale", "current"), (4, "ready", "behind"),
    (6, "ready", "ahead"), (1, "failsafe", "legacy_only"), (0, "not_ready", "legacy_only"),
    (2, "override", "legacy_only")])
def test_sync_of(version: int, state: str, sync: str) -> None:
    assert sync_of(replica("r", version, state), 5) == sync


def test_convergence_and_pending() -> None:
    replicas = [replica("b", 5), replica("a", 4), replica("c", 3, "failsafe"), replica("d", 6)]
    result = converge(5, replicas)
    assert [r.replica_id for r in result.replicas] == ["a", "b", "c", "d"]
    assert [r.replica_id for r in result.lagging()] == ["a", "d"]
    assert not result.converged
    assert [r.replica_id for r in pending(replicas, 5)] == ["a"]
    assert converge(5, [replica("x", 5)]).converged


def test_parse_status_skips_foreign_records_and_ignores_new_keys() -> None:
    assert parse_status(b"garbage") is None
    assert parse_status(b'{"replica_id": "r"}') is None
    status = parse_status(b'{"replica_id": "r", "version": 2, "state": "ready", '
                          b'"source": "redis", "seen_at": "t", "future_key": 1}')
    assert status is not None and status.version == 2


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.25, 2.0, rand=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next_delay() == 0.25
    jittered = Backoff(1.0, 1.0, rand=lambda: 1.0)
    assert jittered.next_delay() == 0.5
