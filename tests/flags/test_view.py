"""The effective view: the config file's layer can switch things off, never on."""

from __future__ import annotations

import pytest

from proxy.config.orchestrator import FeatureFlags
from proxy.flags.view import FlagView, LocalLayer, combine
from tests.flags.helpers import config, snapshot


@pytest.mark.parametrize(("stored", "local", "effective"), [
    (True, True, True), (True, False, False), (False, True, False), (False, False, False)])
def test_use_orchestrator_needs_both_layers(stored: bool, local: bool, effective: bool) -> None:
    result = combine(snapshot(system={"use_orchestrator": stored}),
                     LocalLayer(use_orchestrator=local))
    assert result.system.use_orchestrator is effective


def test_feature_flags_are_anded() -> None:
    stored = snapshot(feature_flags={"enable_validation": False})
    local = LocalLayer(feature_flags=FeatureFlags(enable_result_merging=False))
    flags = combine(stored, local).feature_flags
    assert not flags.enable_validation and not flags.enable_result_merging
    assert flags.enable_model_selection


def test_everything_else_is_the_stored_snapshot() -> None:
    stored = snapshot(shadow_percent=7, kill=True, system={"migration_mode": "full"},
                      legacy_system={"enabled": False})
    local = LocalLayer.from_config(config(system={"migration_mode": "gradual"},
                                          traffic={"shadow_percent": 1}))
    result = combine(stored, local)
    assert (result.shadow_percent, result.kill, result.system.migration_mode,
            result.legacy_system.enabled) == (7, True, "full", False)


def test_combine_returns_the_same_object_when_nothing_is_switched_off() -> None:
    stored = snapshot(shadow_percent=3)
    assert combine(stored, LocalLayer()) is stored


def test_view_keeps_the_stored_snapshot_and_its_version() -> None:
    stored = snapshot(version=4, system={"use_orchestrator": True})
    view = FlagView.build(stored, LocalLayer(use_orchestrator=False), "ready", "redis", 1.0)
    assert view.version == 4 and view.stored is stored
    assert view.snapshot.system.use_orchestrator is False
    assert view.with_local(LocalLayer()).snapshot.system.use_orchestrator is True


@pytest.mark.parametrize(("state", "legacy_only"), [
    ("not_ready", True), ("ready", False), ("stale", False), ("failsafe", True),
    ("override", True)])
def test_legacy_only_states(state: str, legacy_only: bool) -> None:
    view = FlagView.build(snapshot(), LocalLayer(), state, "redis", 0.0)  # type: ignore[arg-type]
    assert view.legacy_only is legacy_only


def test_age_uses_the_monotonic_confirmation_time() -> None:
    view = FlagView.build(snapshot(), LocalLayer(), "ready", "redis", 10.0)
    assert view.age(12.5) == 2.5
    assert FlagView.build(snapshot(), LocalLayer(), "not_ready", "default", None).age(5) is None


def test_switched_off_names_what_the_local_config_turns_off() -> None:
    from proxy.config.orchestrator import FeatureFlags
    from proxy.flags.snapshot import FlagSnapshot
    from proxy.flags.view import LocalLayer, switched_off

    stored = FlagSnapshot.model_validate({})
    local = LocalLayer(use_orchestrator=False,
                       feature_flags=FeatureFlags(enable_validation=False))
    assert switched_off(stored, local) == ("system.use_orchestrator",
                                           "feature_flags.enable_validation")
    assert switched_off(stored, LocalLayer()) == ()
    off_in_snapshot = FlagSnapshot.model_validate({"system": {"use_orchestrator": False}})
    assert switched_off(off_in_snapshot, local) == ("feature_flags.enable_validation",)
