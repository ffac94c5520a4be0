"""`MigrationAdapter.update_config` and `toggle_orchestrator` write the live flags in a
real redis-server (through `proxy.flags.writer`), so every replica follows them; this
process follows them at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from proxy import MigrationAdapter
from proxy.flags.store import StoreError
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.servers import RedisServer
from tests.orchestrator.conftest import REPO, run

pytestmark = pytest.mark.integration

WEEKS = [
    {"enable_model_selection": True, "enable_parallel_execution": False,
     "enable_result_merging": False},
    {"enable_model_selection": True, "enable_parallel_execution": True,
     "enable_result_merging": False},
    {"enable_model_selection": True, "enable_parallel_execution": True,
     "enable_result_merging": True, "enable_validation": True,
     "enable_performance_tracking": True},
]


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Any:
    with ModelFleet({"qwen-max": ModelBehaviour(answer="Paris"),
                     "deepseek-chat": ModelBehaviour(answer="Paris")}) as models:
        for variable, key in models.keys().items():  # the models' api_key_env
            monkeypatch.setenv(variable, key)
        yield models


def config_file(tmp_path: Path, fleet: ModelFleet, redis_url: str, prefix: str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "models": fleet.entries(), "redis": {"url": redis_url, "key_prefix": prefix},
        "orchestrator": {"validation_policy_file": str(REPO / "policies/validation.json")}}))
    return path


def stored(redis_server: RedisServer, prefix: str) -> dict[str, Any]:
    raw = redis.Redis.from_url(redis_server.url).get(f"{prefix}:flags")
    assert raw is not None
    return dict(orjson.loads(raw))


def test_feature_activation_week_by_week(redis_server: RedisServer, fleet: ModelFleet,
                                         tmp_path: Path) -> None:
    adapter = MigrationAdapter(config_file(tmp_path, fleet, redis_server.url, "weeks"))
    orchestrator = adapter.initialize_orchestrator()
    assert orchestrator is not None
    versions = []
    for week in WEEKS:
        snapshot = adapter.update_config({"feature_flags": week})
        versions.append(snapshot["version"])
        assert {k: snapshot["feature_flags"][k] for k in week} == week
        assert stored(redis_server, "weeks")["feature_flags"] == snapshot["feature_flags"]
        assert orchestrator.feature_flags.model_dump() == snapshot["feature_flags"]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert stored(redis_server, "weeks")["updated_by"].startswith("python:")
    audit = redis.Redis.from_url(redis_server.url).xlen("weeks:flags:audit")
    assert audit == 3


def test_dynamic_orchestrator_defaults_apply_here_too(redis_server: RedisServer,
                                                      fleet: ModelFleet,
                                                      tmp_path: Path) -> None:
    adapter = MigrationAdapter(config_file(tmp_path, fleet, redis_server.url, "dyn"))
    orchestrator = adapter.initialize_orchestrator()
    assert orchestrator is not None
    adapter.update_config({"orchestrator": {"default_quality_threshold": 0.9,
                                            "default_cost_limit": 0.5}})
    assert stored(redis_server, "dyn")["orchestrator"] == {"default_quality_threshold": 0.9,
                                                           "default_cost_limit": 0.5}
    assert orchestrator.config.default_quality_threshold == 0.9
    # A new process picks the live values up from Redis, not from config.json.
    fresh = MigrationAdapter(config_file(tmp_path, fleet, redis_server.url, "dyn"))
    again = fresh.initialize_orchestrator()
    assert again is not None and again.config.default_cost_limit == 0.5


def test_unknown_keys_are_refused_and_nothing_is_written(redis_server: RedisServer,
                                                         fleet: ModelFleet,
                                                         tmp_path: Path) -> None:
    adapter = MigrationAdapter(config_file(tmp_path, fleet, redis_server.url, "typo"))
    first = adapter.update_config({"system": {"use_orchestrator": True}})
    with pytest.raises(ValueError, match="feature_flags"):
        adapter.update_config({"feature_flags": {"enable_model_selectoin": True}})
    assert stored(redis_server, "typo")["version"] == first["version"]


def test_toggle_orchestrator_rolls_back_and_restores(redis_server: RedisServer,
                                                     fleet: ModelFleet,
                                                     tmp_path: Path) -> None:
    path = config_file(tmp_path, fleet, redis_server.url, "toggle")
    adapter = MigrationAdapter(path)
    assert adapter.initialize_orchestrator() is not None
    adapter.update_config({"divert_percent": 25.0})
    off = adapter.toggle_orchestrator(False)
    assert off["system"]["use_orchestrator"] is False
    assert stored(redis_server, "toggle")["system"]["use_orchestrator"] is False
    assert adapter.orchestrator is None
    # "Rolled back to legacy system": new processes do not start the orchestrator either.
    assert MigrationAdapter(path).initialize_orchestrator() is None
    result = run(adapter.fetch_data_with_collaboration("Capital of France?"))
    assert result["success"] is False and "not available" in result["error"]
    on = adapter.toggle_orchestrator(True)
    assert on["system"]["use_orchestrator"] is True and on["divert_percent"] == 25.0
    result = run(adapter.fetch_data_with_collaboration("Capital of France?"))
    assert result["success"] and result["data"] == "Paris"


def test_full_migration_and_the_hard_rollback(redis_server: RedisServer, fleet: ModelFleet,
                                              tmp_path: Path) -> None:
    adapter = MigrationAdapter(config_file(tmp_path, fleet, redis_server.url, "full"))
    snapshot = adapter.update_config({"legacy_system": {"enabled": False},
                                      "system": {"use_orchestrator": True,
                                                 "migration_mode": "full"}})
    assert snapshot["system"]["migration_mode"] == "full"
    assert snapshot["legacy_system"]["enabled"] is False
    killed = adapter.rollback("incident 42")
    assert killed["kill"] is True and killed["divert_percent"] == 0.0
    assert stored(redis_server, "full")["reason"] == "incident 42"


def test_an_unreachable_redis_is_an_error_not_a_silent_no_op(fleet: ModelFleet,
                                                             tmp_path: Path) -> None:
    adapter = MigrationAdapter(config_file(tmp_path, fleet, "redis://127.0.0.1:9/0", "x"))
    with pytest.raises(StoreError):
        adapter.toggle_orchestrator(False)


def test_a_running_adapter_follows_changes_made_elsewhere(
        redis_server: RedisServer, fleet: ModelFleet, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import proxy.orchestrator.adapter as adapter_module

    monkeypatch.setattr(adapter_module, "LIVE_REFRESH_SECONDS", 0.0)
    path = config_file(tmp_path, fleet, redis_server.url, "elsewhere")
    serving, operator = MigrationAdapter(path), MigrationAdapter(path, actor="cli:ops")
    assert run(serving.fetch_data_with_collaboration("Capital?"))["success"]
    operator.toggle_orchestrator(False)
    off = run(serving.fetch_data_with_collaboration("Capital?"))
    assert off["success"] is False and "not available" in off["error"]
    operator.update_config({"system": {"use_orchestrator": True},
                            "feature_flags": {"enable_performance_tracking": False}})
    back = run(serving.fetch_data_with_collaboration("Capital?"))
    assert back["success"] and serving.orchestrator is not None
    assert serving.orchestrator.feature_flags.enable_performance_tracking is False
