"""The flag snapshot: one versioned, validated, immutable JSON document.

Layer: pure core. This is the shape every writer (CLI, admin API, `MigrationAdapter`)
produces and every replica reads; see `/work/notes/contracts.md`:

    {"schema": 1, "version": 7, "kill": false,
     "shadow_percent": 25.0, "divert_percent": 5.0,
     "routes": {"/openai": {"shadow_percent": 50.0, "divert_percent": null, "kill": null}},
     "system": {...}, "legacy_system": {...}, "feature_flags": {...},
     "orchestrator": {"default_quality_threshold": 0.8, "default_cost_limit": 1.0},
     "updated_by": "cli:alice@host", "reason": "ramp to 25%", "updated_at": "..."}

Validation is strict on purpose: a string where a number belongs,
an unknown key, a percentage outside 0–100 or with more than two decimals, or another
schema version makes the whole snapshot invalid, and a replica that reads it goes
fail-safe rather than guessing the operator's intent. The migration guide's section names
are kept as-is so `update_config({...})` is a validated deep merge (`apply_changes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, Field, ValidationError, field_validator

from proxy.config.base import Section
from proxy.config.load import format_validation_error
from proxy.config.model import Config
from proxy.config.orchestrator import FeatureFlags, LegacySystem, SystemSection
from proxy.config.traffic import two_decimals

# Keys a writer sets itself; a change that tries to set them is refused.
MANAGED_KEYS = frozenset({"schema", "version", "updated_by", "updated_at"})
MAX_SNAPSHOT_BYTES = 64 * 1024

Percent = Annotated[float, Field(ge=0, le=100), AfterValidator(two_decimals)]


class SnapshotInvalid(ValueError):
    """A snapshot (read from the store, or produced by a change) failed validation.

    The message names the dotted key, like configuration errors do, and never contains
    the raw document (it could be large or hostile).
    """


class RouteFlags(Section):
    """A per-route override; `None` inherits the global value."""

    shadow_percent: Percent | None = None
    divert_percent: Percent | None = None
    kill: bool | None = None


class LiveOrchestrator(Section):
    """The orchestrator settings an operator may change without a restart."""

    default_quality_threshold: float = Field(0.8, ge=0, le=1)
    default_cost_limit: float = Field(1.0, ge=0)


class FlagSnapshot(Section):
    schema_version: Literal[1] = Field(1, alias="schema")
    version: int = Field(0, ge=0)
    kill: bool = False
    shadow_percent: Percent = 0.0
    divert_percent: Percent = 0.0
    routes: dict[str, RouteFlags] = Field(default_factory=dict)
    system: SystemSection = SystemSection()
    legacy_system: LegacySystem = LegacySystem()
    feature_flags: FeatureFlags = FeatureFlags()
    orchestrator: LiveOrchestrator = LiveOrchestrator.model_validate({})
    updated_by: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=500)
    updated_at: datetime | None = None

    @field_validator("routes")
    @classmethod
    def _route_prefixes(cls, value: dict[str, RouteFlags]) -> dict[str, RouteFlags]:
        for prefix in value:
            if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) > 200:
                raise ValueError(f"route prefix {prefix!r} must look like '/openai'")
        return value

    def route(self, prefix: str) -> RouteFlags | None:
        return self.routes.get(prefix)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def parse_snapshot(raw: bytes | str) -> FlagSnapshot:
    """Validate a stored snapshot; raise `SnapshotInvalid` with an operator's message."""
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise SnapshotInvalid(f"snapshot is {len(raw)} bytes, over {MAX_SNAPSHOT_BYTES}")
    try:
        return FlagSnapshot.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise SnapshotInvalid(_message(exc)) from None


def encode_snapshot(snapshot: FlagSnapshot) -> bytes:
    return orjson.dumps(snapshot.to_dict())


def default_snapshot(config: Config) -> FlagSnapshot:
    """Version 0: what applies while the store holds no snapshot, taken from config.json."""
    return FlagSnapshot.model_validate({
        "shadow_percent": config.traffic.shadow_percent,
        "divert_percent": config.traffic.divert_percent,
        "system": config.system,
        "legacy_system": config.legacy_system,
        "feature_flags": config.feature_flags,
        "orchestrator": {
            "default_quality_threshold": config.orchestrator.default_quality_threshold,
            "default_cost_limit": config.orchestrator.default_cost_limit,
        },
    })


def apply_changes(
    base: FlagSnapshot,
    changes: Mapping[str, Any],
    *,
    version: int,
    actor: str,
    reason: str | None,
    now: datetime | None = None,
) -> FlagSnapshot:
    """The next snapshot: `changes` deep-merged into `base`, validated, stamped.

    Nested sections merge key by key (`{"feature_flags": {"enable_validation": false}}`
    keeps the other four flags); a route set to `None` drops that override. `reason` comes
    from the argument, else from `changes["reason"]`; it is never inherited from `base`,
    since the previous change's reason would describe the wrong change.
    """
    managed = sorted(MANAGED_KEYS & set(changes))
    if managed:
        raise SnapshotInvalid(f"{', '.join(managed)}: set by the writer, not by a change")
    merged = deep_merge(base.to_dict(), dict(changes))
    merged.update(
        version=version,
        updated_by=actor,
        reason=reason if reason is not None else changes.get("reason"),
        updated_at=(now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    )
    return parse_snapshot(_dumps(merged))


def deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if key == "routes" and isinstance(value, Mapping):
            out[key] = _merge_routes(out.get(key) or {}, value)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _merge_routes(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for prefix, value in changes.items():
        if value is None:
            out.pop(prefix, None)
        elif isinstance(value, Mapping) and isinstance(out.get(prefix), dict):
            out[prefix] = {**out[prefix], **value}
        else:
            out[prefix] = value
    return out


def _dumps(data: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(data)
    except TypeError as exc:
        raise SnapshotInvalid(f"a value is not JSON: {exc}") from None


def _message(exc: ValidationError) -> str:
    return format_validation_error(exc, "flag snapshot")
