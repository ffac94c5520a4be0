"""`llm-shadow ramp status|start|pause|resume` against a real redis-server: start applies
the first step with an audit reason, status shows step, time in step, latest evaluation
and lock holder, exit codes, and clear messages for Redis down or a bad policy."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from proxy.cli.main import main
from tests.fakes.servers import RedisServer, free_port
from tests.ramp.helpers import World, policy_data, run

pytestmark = pytest.mark.integration


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, str]:
    """A config (own key prefix) and a ramp policy beside it, in policies/ramp.json."""
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"key_prefix": prefix}}))
    policy = tmp_path / "policies" / "ramp.json"
    policy.parent.mkdir()
    policy.write_text(json.dumps(policy_data()))
    return config, policy, prefix


def ramp(config: Path, redis: RedisServer, *argv: str) -> int:
    return main(["ramp", argv[0], "--config", str(config), "--redis-url", redis.url,
                 *argv[1:]])


def in_world(redis: RedisServer, prefix: str, action: Any) -> Any:
    """Run `action(world)` on the CLI's key prefix."""
    async def body() -> Any:
        w = World(redis.url, prefix)
        try:
            return await action(w)
        finally:
            await w.aclose()

    return run(body())


def test_start_applies_the_first_step_with_an_audit_reason(
        redis_server: RedisServer, files: tuple[Path, Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    config, _, prefix = files
    assert ramp(config, redis_server, "start", "--reason", "orchestrator v2",
                "--actor", "cli:alice") == 0
    out = capsys.readouterr().out
    assert 'ramp started on /openai: step 1/3 "shadow 5%" applied' in out

    async def check(w: World) -> None:
        entry = (await w.audit())[0]
        assert (entry.actor, entry.reason) == ("cli:alice", "ramp start: orchestrator v2")
        assert entry.changes == {"routes": {"/openai": {"shadow_percent": 5.0,
                                                        "divert_percent": 0.0}}}
        state = await w.state()
        assert (state.status, state.step, state.applied) == ("running", 0, True)
        assert state.policy_source.endswith("policies/ramp.json")

    in_world(redis_server, prefix, check)
    assert ramp(config, redis_server, "start") == 1
    assert "already running" in capsys.readouterr().err
    assert ramp(config, redis_server, "start", "--restart", "--step", "2") == 0
    assert 'step 2/3 "shadow 100%"' in capsys.readouterr().out


def test_status_shows_step_time_evaluation_and_lock_holder(
        redis_server: RedisServer, files: tuple[Path, Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    config, _, prefix = files
    assert ramp(config, redis_server, "status") == 0
    assert "no ramp started" in capsys.readouterr().out
    assert ramp(config, redis_server, "start") == 0

    async def evaluate(w: World) -> None:
        w.clock.now = (await w.state()).step_started_at
        await w.feed(12)
        assert await w.runner("pod-a:12").evaluate_once() is not None

    in_world(redis_server, prefix, evaluate)
    capsys.readouterr()
    assert ramp(config, redis_server, "status") == 0
    out = capsys.readouterr().out
    assert "ramp RUNNING on /openai" in out
    assert 'step 1/3 "shadow 5%": shadow 5%, divert 0%;' in out and "in step" in out
    assert "lock: held by replica pod-a:12 (expires in" in out
    assert "latest evaluation" in out and "by pod-a:12: HOLD (too_soon)" in out
    assert "/openai 12/30 compared" in out
    assert "error_rate" in out and "orchestrator errors: 12 requests, needs 30" in out
    assert "start    step 1" in out

    assert ramp(config, redis_server, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"]["status"] == "running" and data["state"]["step"] == 0
    assert data["lock"]["replica_id"] == "pod-a:12"
    assert data["evaluation"]["reason"] == "too_soon"
    assert data["evaluation"]["compared"] == {"/openai": 12}
    assert data["history"][0]["event"] == "start"


def test_pause_and_resume(redis_server: RedisServer, files: tuple[Path, Path, str],
                          capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = files
    assert ramp(config, redis_server, "pause") == 1
    assert "no running ramp to pause (no ramp was started)" in capsys.readouterr().err
    assert ramp(config, redis_server, "start") == 0
    assert ramp(config, redis_server, "pause", "--reason", "look") == 0
    assert "ramp paused at step 1/3" in capsys.readouterr().out
    assert ramp(config, redis_server, "status") == 0
    out = capsys.readouterr().out
    assert "ramp PAUSED" in out and "last change: pause " in out and ": look" in out
    assert ramp(config, redis_server, "pause") == 1
    assert ramp(config, redis_server, "resume") == 0
    assert "ramp resumed at step 1/3" in capsys.readouterr().out
    assert ramp(config, redis_server, "resume") == 1
    assert "no paused ramp to resume (the ramp is running)" in capsys.readouterr().err


def test_the_default_policy_is_beside_the_config_and_errors_name_file_and_key(
        redis_server: RedisServer, files: tuple[Path, Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    config, policy, _ = files
    bad = policy_data()
    bad["steps"][1]["min_compared"] = 0
    policy.write_text(json.dumps(bad))
    assert ramp(config, redis_server, "start") == 2
    err = capsys.readouterr().err
    assert f"{policy}: steps[1].min_compared" in err
    assert ramp(config, redis_server, "start", "--policy", str(config.parent / "none.json")) == 2
    assert "none.json: cannot read" in capsys.readouterr().err
    policy.write_text(json.dumps(policy_data()))
    assert ramp(config, redis_server, "start", "--step", "4") == 2
    assert "--step must be 1 to 3" in capsys.readouterr().err


def test_unreachable_redis_exits_1_without_the_password(
        files: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = files
    url = f"redis://user:s3cret-sentinel@127.0.0.1:{free_port()}/0"
    for action in ("status", "start", "pause", "resume"):
        assert main(["ramp", action, "--config", str(config), "--redis-url", url]) == 1
        err = capsys.readouterr().err
        assert "cannot reach Redis" in err and "is Redis running" in err
        assert "s3cret-sentinel" not in err


def test_the_redis_url_comes_from_the_environment(
        redis_server: RedisServer, files: tuple[Path, Path, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = files
    monkeypatch.setenv("LLM_SHADOW_REDIS_URL", redis_server.url)
    assert main(["ramp", "status", "--config", str(config)]) == 0
    assert "no ramp started" in capsys.readouterr().out


@pytest.mark.parametrize("config_data", [{"flags": {"store": "memory"}},
                                         {"redis": {"url": "memory://"}}])
def test_in_process_stores_are_refused(tmp_path: Path, config_data: dict[str, Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_data))
    with pytest.raises(SystemExit) as exited:
        main(["ramp", "status", "--config", str(config)])
    assert exited.value.code == 2
    assert "inside the serving process" in capsys.readouterr().err
