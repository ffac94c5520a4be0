"""The snapshot model: strict validation (a replica goes fail-safe on anything odd),
defaults from config.json, and the writers' validated deep merge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from proxy.flags.snapshot import (
    FlagSnapshot,
    SnapshotInvalid,
    apply_changes,
    default_snapshot,
    encode_snapshot,
    parse_snapshot,
)
from tests.flags.helpers import config

VALID: dict[str, Any] = {
    "schema": 1, "version": 7, "kill": False, "shadow_percent": 25.0, "divert_percent": 5,
    "routes": {"/openai": {"shadow_percent": 50.0, "divert_percent": None, "kill": None}},
    "system": {"use_orchestrator": True, "migration_mode": "gradual", "rollback_enabled": True},
    "legacy_system": {"enabled": True},
    "feature_flags": {"enable_model_selection": True, "enable_validation": False},
    "orchestrator": {"default_quality_threshold": 0.8, "default_cost_limit": 1.0},
    "updated_by": "cli:alice@host", "reason": "ramp to 25%",
    "updated_at": "2026-11-25T14:00:00Z",
}


def test_contract_example_parses() -> None:
    snapshot = parse_snapshot(orjson.dumps(VALID))
    assert snapshot.version == 7 and snapshot.divert_percent == 5.0
    assert snapshot.route("/openai").shadow_percent == 50.0  # type: ignore[union-attr]
    assert snapshot.feature_flags.enable_validation is False
    assert snapshot.feature_flags.enable_result_merging is True


def test_round_trip_keeps_the_contract_key_names() -> None:
    snapshot = parse_snapshot(orjson.dumps(VALID))
    data = orjson.loads(encode_snapshot(snapshot))
    assert data["schema"] == 1 and "schema_version" not in data
    assert parse_snapshot(encode_snapshot(snapshot)) == snapshot


@pytest.mark.parametrize(("patch", "where"), [
    ({"shadow_percent": 150}, "shadow_percent"),
    ({"divert_percent": -1}, "divert_percent"),
    ({"shadow_percent": 12.345}, "two decimals"),
    ({"shadow_percent": "25"}, "shadow_percent"),
    ({"kill": "false"}, "kill"),
    ({"kill": 0}, "kill"),
    ({"version": -1}, "version"),
    ({"version": 1.5}, "version"),
    ({"schema": 2}, "schema"),
    ({"surprise": True}, "unknown key"),
    ({"system": {"use_orchestrator": "yes"}}, "system.use_orchestrator"),
    ({"system": {"migration_mode": "fast"}}, "system.migration_mode"),
    ({"feature_flags": {"enable_magic": True}}, "feature_flags.enable_magic"),
    ({"routes": {"openai": {}}}, "routes"),
    ({"routes": {"/openai": {"shadow_percent": 101}}}, "routes./openai.shadow_percent"),
    ({"orchestrator": {"default_quality_threshold": 2}}, "default_quality_threshold"),
])
def test_invalid_snapshots_are_rejected_with_the_key(patch: dict[str, Any], where: str) -> None:
    with pytest.raises(SnapshotInvalid) as info:
        parse_snapshot(orjson.dumps({**VALID, **patch}))
    assert where in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"null", b"{\"version\": ",
                                 b"x" * 70_000])
def test_garbage_is_rejected(raw: bytes) -> None:
    with pytest.raises(SnapshotInvalid):
        parse_snapshot(raw)


def test_percentages_are_normalised_to_basis_points() -> None:
    assert parse_snapshot(b'{"shadow_percent": 0.29}').shadow_percent == 0.29
    assert parse_snapshot(b'{"shadow_percent": 100}').shadow_percent == 100.0


def test_default_snapshot_comes_from_config_json() -> None:
    cfg = config(traffic={"shadow_percent": 2.5}, system={"use_orchestrator": False},
                 feature_flags={"enable_validation": False},
                 orchestrator={"default_cost_limit": 0.5})
    snapshot = default_snapshot(cfg)
    assert snapshot.version == 0 and snapshot.shadow_percent == 2.5
    assert snapshot.system.use_orchestrator is False
    assert snapshot.feature_flags.enable_validation is False
    assert snapshot.orchestrator.default_cost_limit == 0.5


NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def change(base: FlagSnapshot, changes: dict[str, Any], reason: str | None = None
           ) -> FlagSnapshot:
    return apply_changes(base, changes, version=base.version + 1, actor="test",
                         reason=reason, now=NOW)


def test_changes_deep_merge_sections() -> None:
    base = parse_snapshot(orjson.dumps(VALID))
    new = change(base, {"feature_flags": {"enable_parallel_execution": False}})
    assert new.feature_flags.enable_parallel_execution is False
    assert new.feature_flags.enable_validation is False  # kept from base
    assert new.shadow_percent == 25.0 and new.version == 8
    assert (new.updated_by, new.updated_at) == ("test", NOW)


def test_route_changes_merge_and_none_removes_an_override() -> None:
    base = parse_snapshot(orjson.dumps(VALID))
    new = change(base, {"routes": {"/openai": {"divert_percent": 3},
                                   "/anthropic": {"kill": True}}})
    assert new.routes["/openai"].shadow_percent == 50.0
    assert new.routes["/openai"].divert_percent == 3.0
    assert new.routes["/anthropic"].kill is True
    assert "/openai" not in change(new, {"routes": {"/openai": None}}).routes


def test_the_guides_update_config_shapes_are_accepted() -> None:
    new = change(FlagSnapshot(), {"legacy_system": {"enabled": False},
                                  "system": {"use_orchestrator": True,
                                             "migration_mode": "full"}})
    assert new.system.migration_mode == "full" and new.legacy_system.enabled is False


@pytest.mark.parametrize("key", ["version", "schema", "updated_by", "updated_at"])
def test_managed_keys_cannot_be_changed(key: str) -> None:
    with pytest.raises(SnapshotInvalid, match=key):
        change(FlagSnapshot(), {key: 3})


def test_an_invalid_change_is_refused() -> None:
    with pytest.raises(SnapshotInvalid, match="unknown key"):
        change(FlagSnapshot(), {"feature_flags": {"enable_everything": True}})
    with pytest.raises(SnapshotInvalid, match="not JSON"):
        change(FlagSnapshot(), {"reason": object()})


def test_reason_is_per_change_never_inherited() -> None:
    first = change(FlagSnapshot(), {"shadow_percent": 1}, reason="ramp")
    assert first.reason == "ramp"
    assert change(first, {"shadow_percent": 2}).reason is None
    assert change(first, {"reason": "from body", "kill": True}).reason == "from body"
