"""Replica status records (heartbeats) and the convergence check, like
`istioctl proxy-status`: which live replica has applied which flag version.

Layer: pure core. Each replica writes its `ReplicaStatus` under
`{prefix}:replicas:{replica_id}` with a short TTL (`proxy.flags.heartbeat`), so a replica
that died simply disappears; `llm-shadow status` and `rollback --wait` read them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from proxy.flags.view import LEGACY_ONLY_STATES

Sync = Literal["current", "behind", "ahead", "legacy_only"]


class ReplicaStatus(BaseModel):
    """One replica's last heartbeat. Unknown keys are ignored so an older CLI can read a
    newer replica's record, and the fields after `seen_at` are optional so a newer CLI
    can read an older replica's.

    What the replica actually applies, beyond the version: `use_orchestrator` (the
    stored snapshot's switch AND its own configuration's), `switched_off` (what its
    configuration turns off although the snapshot has it on: `system.use_orchestrator`,
    `feature_flags.*`), and for operators' checks its configuration file, route
    prefixes and the key variables its models miss.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    replica_id: str
    pod: str | None = None
    version: int
    state: str
    source: str
    age_seconds: float | None = None
    detail: str = ""
    seen_at: str
    config: str | None = None
    routes: tuple[str, ...] | None = None
    use_orchestrator: bool | None = None
    switched_off: tuple[str, ...] = ()
    missing_keys: tuple[str, ...] = ()


def parse_status(raw: bytes | str) -> ReplicaStatus | None:
    """A heartbeat record, or None when it is not one (it is skipped, not fatal)."""
    try:
        return ReplicaStatus.model_validate_json(raw)
    except ValidationError:
        return None


def sync_of(status: ReplicaStatus, latest: int) -> Sync:
    """How a replica stands against the latest stored version.

    A replica in a legacy-only state (not_ready, failsafe, override) sends no traffic to
    the orchestrator whatever version it last saw, so it is reported as such rather than
    as behind: for a rollback that is the outcome that matters.
    """
    if status.state in LEGACY_ONLY_STATES:
        return "legacy_only"
    if status.version == latest:
        return "current"
    return "behind" if status.version < latest else "ahead"


@dataclass(frozen=True)
class Convergence:
    latest: int
    replicas: tuple[ReplicaStatus, ...]

    def lagging(self) -> list[ReplicaStatus]:
        """Replicas that may still act on an older snapshot."""
        return [r for r in self.replicas if sync_of(r, self.latest) in ("behind", "ahead")]

    @property
    def converged(self) -> bool:
        return not self.lagging()


def converge(latest: int, replicas: Iterable[ReplicaStatus]) -> Convergence:
    return Convergence(latest, tuple(sorted(replicas, key=lambda r: r.replica_id)))


def serving(replicas: Iterable[ReplicaStatus], prefix: str) -> list[ReplicaStatus]:
    """Replicas whose configuration has the route `prefix` (from their heartbeats)."""
    return [r for r in replicas if r.routes is not None and prefix in r.routes]


def pending(replicas: Iterable[ReplicaStatus], version: int) -> list[ReplicaStatus]:
    """Replicas that have not applied `version` (or a later one) and may still send
    traffic to the orchestrator: what `rollback --wait` waits for."""
    return [r for r in replicas
            if r.version < version and r.state not in LEGACY_ONLY_STATES]
