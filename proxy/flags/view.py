"""What one replica acts on: the flag snapshot plus its state, source and age.

Layer: pure core. A `FlagView` is immutable; the watcher swaps a new one in whenever the
snapshot, the state or the local layer changes, so a request reads one consistent view
with a single attribute access.

Two layers make the effective snapshot (`FlagView.snapshot`):

- the stored snapshot (Redis, or the in-process store), or the config defaults while
  the store holds none;
- the local layer from `config.json` (reloaded on SIGHUP and on file change) and the
  environment. The guide's rollback "edit config.json: `system.use_orchestrator: false`"
  must work without a restart, so the file can *switch things off*:
  `system.use_orchestrator` and each of the five `feature_flags` are true only when both
  layers say true. Everything else (percentages, kill, migration_mode, legacy_system,
  rollback_enabled, live orchestrator settings) is the stored snapshot's; the file's
  values for those only seed the defaults (version 0). A local override
  (`LLM_SHADOW_FORCE_LEGACY=1` or the `flags.force_legacy_file`) pre-empts everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from proxy.config.model import Config
from proxy.config.orchestrator import FeatureFlags
from proxy.config.traffic import DEFAULT_ELIGIBLE_PATHS
from proxy.flags.snapshot import FlagSnapshot

State = Literal["not_ready", "ready", "stale", "failsafe", "override"]
Source = Literal["default", "redis", "memory"]

# States in which no request leaves the legacy path, whatever the snapshot says.
LEGACY_ONLY_STATES: frozenset[str] = frozenset({"not_ready", "failsafe", "override"})


@dataclass(frozen=True)
class LocalLayer:
    """This replica's own contribution: the config file's switches and the override."""

    use_orchestrator: bool = True
    feature_flags: FeatureFlags = field(default_factory=FeatureFlags)
    force_legacy: bool = False
    eligible_paths: tuple[str, ...] = DEFAULT_ELIGIBLE_PATHS
    bucket_header: str = "x-conversation-id"

    @classmethod
    def from_config(cls, config: Config, *, force_legacy: bool = False) -> LocalLayer:
        return cls(
            use_orchestrator=config.system.use_orchestrator,
            feature_flags=config.feature_flags,
            force_legacy=force_legacy,
            eligible_paths=config.traffic.eligible_paths,
            bucket_header=config.traffic.bucket_header,
        )


def combine(stored: FlagSnapshot, local: LocalLayer) -> FlagSnapshot:
    """The effective snapshot: the stored one with the local layer's switches applied."""
    use = stored.system.use_orchestrator and local.use_orchestrator
    flags = {
        name: getattr(stored.feature_flags, name) and getattr(local.feature_flags, name)
        for name in FeatureFlags.model_fields
    }
    if use == stored.system.use_orchestrator and flags == stored.feature_flags.model_dump():
        return stored
    return stored.model_copy(update={
        "system": stored.system.model_copy(update={"use_orchestrator": use}),
        "feature_flags": FeatureFlags(**flags),
    })


def switched_off(stored: FlagSnapshot, local: LocalLayer) -> tuple[str, ...]:
    off = ["system.use_orchestrator"] if stored.system.use_orchestrator and not \
        local.use_orchestrator else []
    off += [f"feature_flags.{name}" for name in FeatureFlags.model_fields
            if getattr(stored.feature_flags, name) and not getattr(local.feature_flags, name)]
    return tuple(off)


@dataclass(frozen=True)
class FlagView:
    """One consistent reading of the flags for the request path.

    `confirmed_at` is the monotonic time of the last successful read of the store (None
    before the first one); staleness is measured on this replica's monotonic clock only,
    never from the writer's wall-clock `updated_at` (replicas' clocks disagree; a writer
    whose clock runs ahead must not make every replica look fresh or stale).
    """

    snapshot: FlagSnapshot
    stored: FlagSnapshot
    state: State
    source: Source
    local: LocalLayer
    confirmed_at: float | None = None
    detail: str = ""

    @classmethod
    def build(cls, stored: FlagSnapshot, local: LocalLayer, state: State, source: Source,
              confirmed_at: float | None, detail: str = "") -> FlagView:
        return cls(combine(stored, local), stored, state, source, local, confirmed_at, detail)

    @property
    def version(self) -> int:
        return self.stored.version

    @property
    def legacy_only(self) -> bool:
        """True when no request may be shadowed or diverted, whatever the percentages."""
        return self.state in LEGACY_ONLY_STATES

    def age(self, now: float) -> float | None:
        return None if self.confirmed_at is None else max(0.0, now - self.confirmed_at)

    def switched_off(self) -> tuple[str, ...]:
        """The switches this replica's configuration turns off although the stored
        snapshot has them on (dotted names): where what it applies differs from the
        snapshot whatever its version."""
        return switched_off(self.stored, self.local)

    def with_state(self, state: State, detail: str) -> FlagView:
        return replace(self, state=state, detail=detail)

    def with_local(self, local: LocalLayer) -> FlagView:
        return replace(self, snapshot=combine(self.stored, local), local=local)
