"""What `llm-shadow status` prints: the stored snapshot, and what each live replica
actually applies.

Layer: composition (formatting only). The stored snapshot is what Redis holds; a replica
applies it combined with its own configuration, which can switch `use_orchestrator` and
the feature flags off (they are on only where both say on, `proxy.flags.view`). So a
snapshot saying `use_orchestrator True` does not mean every replica sends traffic to the
orchestrator: each replica's heartbeat says what it applies, and where its
configuration switches off what the snapshot switches on, its line says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proxy.flags.replicas import ReplicaStatus, converge, sync_of
from proxy.flags.snapshot import FlagSnapshot


def one_line(snapshot: FlagSnapshot) -> str:
    routes = "".join(
        f", {prefix}: shadow {_pct(r.shadow_percent)} divert {_pct(r.divert_percent)}"
        f"{' kill' if r.kill else ''}"
        for prefix, r in sorted(snapshot.routes.items()))
    return (f"shadow {snapshot.shadow_percent:g}%, divert {snapshot.divert_percent:g}%, "
            f"kill {'on' if snapshot.kill else 'off'}, "
            f"use_orchestrator {snapshot.system.use_orchestrator}, "
            f"mode {snapshot.system.migration_mode}{routes}")


def print_status(snapshot: FlagSnapshot | None, problem: str | None, shown: FlagSnapshot,
                 replicas: list[ReplicaStatus]) -> None:
    if problem:
        print(f"stored snapshot: INVALID ({problem}); replicas are fail-safe (legacy only)")
    elif snapshot is None:
        print("stored snapshot: none (replicas apply the config defaults, version 0)")
    print(f"stored snapshot version {shown.version}: {one_line(shown)}")
    if snapshot is not None:
        print(f"written {_ago(snapshot.updated_at)} by {snapshot.updated_by or '-'}"
              f"{f' ({snapshot.reason})' if snapshot.reason else ''}")
    result = converge(shown.version, replicas)
    if not replicas:
        print("\n0 live replicas: no sidecar heartbeats under this Redis and key prefix "
              "(the first line says which; is it the one your sidecars use?)")
        return
    print(f"\n{len(replicas)} live replica(s), and what each applies:")
    for replica in result.replicas:
        print(replica_line(replica, shown.version))
    differing = [r for r in result.replicas if r.switched_off]
    if differing:
        print(f"\nnote: {len(differing)} replica(s) apply less than the stored snapshot: "
              f"their own configuration switches off "
              f"{', '.join(sorted({n for r in differing for n in r.switched_off}))} "
              f"(a switch is on only where both the snapshot and the replica's "
              f"config.json say on; config.json is reloaded live)")


def replica_line(replica: ReplicaStatus, latest: int) -> str:
    sync = sync_of(replica, latest)
    mark = {"current": "", "legacy_only": "  (legacy only)"}.get(
        sync, f"  <-- {sync.upper()}: not on version {latest}")
    age = "-" if replica.age_seconds is None else f"{replica.age_seconds:.1f}s"
    line = (f"  {replica.replica_id:<32} {replica.pod or '-':<20} v{replica.version:<6} "
            f"{replica.state:<10} age {age}{mark}")
    if replica.switched_off:
        config = f" ({replica.config})" if replica.config else ""
        line += (f"\n      applies {', '.join(replica.switched_off)} OFF: its "
                 f"configuration{config} switches it off")
    if replica.missing_keys:
        line += (f"\n      models not selected, their API key variable is unset: "
                 f"{', '.join(replica.missing_keys)}")
    return line


def status_json(snapshot: FlagSnapshot | None, problem: str | None, shown: FlagSnapshot,
                replicas: list[ReplicaStatus]) -> dict[str, Any]:
    return {
        "stored": snapshot is not None, "invalid": problem, "snapshot": shown.to_dict(),
        "replicas": [{**r.model_dump(), "sync": sync_of(r, shown.version),
                      "differs_from_snapshot": bool(r.switched_off)}
                     for r in converge(shown.version, replicas).replicas],
    }


def _pct(value: float | None) -> str:
    return "inherit" if value is None else f"{value:g}%"


def _ago(when: datetime | None) -> str:
    if when is None:
        return "at an unknown time"
    seconds = (datetime.now(UTC) - when).total_seconds()
    return f"{seconds:.1f}s ago (writer's clock)" if seconds < 120 else \
        f"{seconds / 60:.0f} min ago (writer's clock)"
