"""`llm-shadow status | set | rollback | audit` in-process, against a real redis-server."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import orjson
import pytest
from redis import Redis

from proxy.cli import main as cli_main
from tests.fakes.servers import RedisServer

_prefixes = itertools.count()


def main(argv: list[str]) -> int | str | None:
    """The console script's exit status: usage errors raise SystemExit, like argparse."""
    try:
        return cli_main.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def cfg(tmp_path: Path, redis_server: RedisServer) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"redis": {"url": redis_server.url,
                                          "key_prefix": f"cli-{next(_prefixes)}"}}))
    return str(path)


def prefix_of(cfg: str) -> str:
    return str(json.loads(Path(cfg).read_text())["redis"]["key_prefix"])


def heartbeat(redis_server: RedisServer, cfg: str, name: str, version: int,
              state: str = "ready") -> None:
    record = {"replica_id": name, "pod": "pod-" + name, "version": version, "state": state,
              "source": "redis", "age_seconds": 0.1, "seen_at": "now"}
    Redis.from_url(redis_server.url).set(f"{prefix_of(cfg)}:replicas:{name}",
                                         orjson.dumps(record), ex=30)


def test_set_status_audit_rollback(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["set", "--config", cfg, "--shadow", "5", "--divert", "2.5",
                 "--reason", "start", "--actor", "alice"]) == 0
    assert "flags version 1 written: shadow 5%, divert 2.5%" in capsys.readouterr().out
    assert main(["set", "--config", cfg, "--route", "/anthropic", "--divert", "10"]) == 0
    assert main(["status", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "version 2:" in out and "/anthropic: shadow inherit divert 10%" in out
    assert main(["rollback", "--config", cfg, "--reason", "spike"]) == 0
    assert "rolled back: flags version 3" in capsys.readouterr().out
    assert main(["audit", "--config", cfg, "--limit", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "v3" in lines[0] and 'reason: "spike"' in lines[0]
    assert main(["status", "--config", cfg, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["snapshot"]["kill"] is True and status["snapshot"]["routes"] == {}


def test_set_after_rollback_reminds_about_the_kill_switch(
        cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollback", "--config", cfg]) == 0
    assert main(["set", "--config", cfg, "--shadow", "5"]) == 0
    assert "--no-kill" in capsys.readouterr().out
    assert main(["set", "--config", cfg, "--no-kill"]) == 0
    assert "kill off" in capsys.readouterr().out


def test_changes_json_sets_any_section(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["set", "--config", cfg, "--changes",
                 '{"system": {"use_orchestrator": false}}']) == 0
    assert "use_orchestrator False" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["--shadow", "150"], ["--divert", "-1"], ["--shadow", "1.234"],
    ["--changes", '{"feature_flags": {"enable_magic": true}}'], ["--changes", "[1]"],
    ["--changes", "{"], [], ["--clear-route"], ["--route", "/openai"],
    ["--route", "openai", "--shadow", "1"]])
def test_invalid_changes_are_refused_before_connecting(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Redis is unreachable here: exit 2 (not 1) proves nothing tried to connect.
    assert main(["set", "--redis-url", "redis://127.0.0.1:9/0", *argv]) == 2
    assert "llm-shadow:" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["status"], ["set", "--kill"], ["rollback"], ["audit"]])
def test_unreachable_redis_exits_1_with_a_clear_message(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    url = "redis://user:hunter2@127.0.0.1:9/0"
    assert main([*command, "--redis-url", url]) == 1
    err = capsys.readouterr().err
    assert "cannot reach Redis" in err and "hunter2" not in err
    assert err.rstrip().endswith("(Redis 127.0.0.1:9 db 0 (user user), key prefix llm-shadow)")


def test_redis_url_from_the_environment(cfg: str, redis_server: RedisServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_SHADOW_REDIS_URL", "redis://127.0.0.1:9/0")
    assert main(["status", "--config", cfg]) == 1
    assert main(["status", "--config", cfg, "--redis-url", redis_server.url]) == 0


def test_memory_store_has_no_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"flags": {"store": "memory"}}))
    assert main(["rollback", "--config", str(path)]) == 2
    assert "admin API" in capsys.readouterr().err


def test_status_marks_replicas_not_on_the_latest_version(
        cfg: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    main(["set", "--config", cfg, "--shadow", "1"])
    main(["set", "--config", cfg, "--shadow", "2"])
    heartbeat(redis_server, cfg, "r-current", 2)
    heartbeat(redis_server, cfg, "r-behind", 1)
    heartbeat(redis_server, cfg, "r-failsafe", 1, "failsafe")
    capsys.readouterr()
    assert main(["status", "--config", cfg]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  r-")}
    assert "BEHIND" in lines["r-behind"]
    assert "BEHIND" not in lines["r-current"] and "legacy only" in lines["r-failsafe"]


def test_rollback_wait_names_the_replicas_that_did_not_apply_it(
        cfg: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    heartbeat(redis_server, cfg, "r-stuck", 0)
    assert main(["rollback", "--config", cfg, "--wait", "--timeout", "0.3"]) == 1
    captured = capsys.readouterr()
    assert "r-stuck" in captured.out and "NOT APPLIED" in captured.out
    assert "1 of 1 replicas did not apply version 1" in captured.err


def test_rollback_wait_without_replicas_fails_saying_so(
        cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    """With no replica heartbeating under this Redis and prefix, nothing is known to have
    applied the rollback: perhaps the command reached the wrong Redis."""
    assert main(["rollback", "--config", cfg, "--wait", "--timeout", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "no live replica is watching" in err and "FAILED" in err
