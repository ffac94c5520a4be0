"""The operator's commands run as a user runs them (the console script in a subprocess):
each says first which configuration and which Redis it used, warns when no replica is
watching that Redis, refuses unknown routes, and `status` shows what replicas apply."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis

from tests.fakes.cli import llm_shadow
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import RedisServer, wait_for

pytestmark = pytest.mark.integration
_prefixes = itertools.count()


def write_config(folder: Path, redis_url: str, **extra: Any) -> tuple[Path, str]:
    prefix = f"safety-{next(_prefixes)}"
    path = folder / "config.json"
    path.write_text(json.dumps({"redis": {"url": redis_url, "key_prefix": prefix}, **extra}))
    return path, prefix


def heartbeat(redis_server: RedisServer, prefix: str, name: str, version: int,
              **fields: Any) -> None:
    record = {"replica_id": name, "version": version, "state": "ready", "source": "redis",
              "seen_at": "now", **fields}
    Redis.from_url(redis_server.url).set(f"{prefix}:replicas:{name}", orjson.dumps(record),
                                         ex=30)


def test_without_a_config_file_the_first_line_says_built_in_defaults(tmp_path: Path) -> None:
    result = llm_shadow("status", "--redis-url", "redis://user:hunter2@127.0.0.1:9/3",
                        cwd=tmp_path)
    assert result.returncode == 1  # nothing listens there
    first = result.stderr.splitlines()[0]
    assert first.startswith("llm-shadow: no config file: built-in defaults; ")
    assert "Redis 127.0.0.1:9 db 3" in first and "key prefix llm-shadow" in first
    assert "(from --redis-url)" in first and "hunter2" not in result.stderr


@pytest.mark.parametrize("command", [["status"], ["set", "--shadow", "5"], ["rollback"],
                                     ["ramp", "status"]])
def test_a_password_in_the_query_string_is_never_printed(tmp_path: Path,
                                                         command: list[str]) -> None:
    """redis-py also takes the password as `?password=`; the first line and the error
    that Redis is unreachable name the Redis without it."""
    config, _ = write_config(tmp_path, "redis://127.0.0.1:9/0?password=hunter2")
    result = llm_shadow(*command, "--config", str(config), cwd=tmp_path)
    assert result.returncode != 0  # nothing listens there
    assert "Redis 127.0.0.1:9 db 0" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_the_first_line_names_the_file_and_the_redis_and_json_stays_parseable(
        tmp_path: Path, redis_server: RedisServer) -> None:
    config, prefix = write_config(tmp_path, redis_server.url)
    result = llm_shadow("status", "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"llm-shadow: config {config}; Redis 127.0.0.1:{redis_server.port} db 0, "
        f"key prefix {prefix}")
    assert json.loads(result.stdout)["replicas"] == []


def test_redis_url_from_the_environment_is_named(tmp_path: Path,
                                                 redis_server: RedisServer) -> None:
    config, _ = write_config(tmp_path, "redis://127.0.0.1:9/0")
    result = llm_shadow("audit", "--config", str(config), cwd=tmp_path,
                        env={"LLM_SHADOW_REDIS_URL": redis_server.url})
    assert result.returncode == 0, result.stderr
    assert "(from LLM_SHADOW_REDIS_URL)" in result.stderr.splitlines()[0]


@pytest.mark.parametrize("command", [["set", "--shadow", "5"], ["rollback"]])
def test_set_and_rollback_warn_when_no_replica_is_watching(
        command: list[str], tmp_path: Path, redis_server: RedisServer) -> None:
    config, prefix = write_config(tmp_path, redis_server.url)
    result = llm_shadow(*command, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "WARNING: no live replica is watching" in result.stderr
    assert f"key prefix {prefix}" in result.stderr
    assert "INFO" not in result.stderr  # the writer's log line is not repeated
    heartbeat(redis_server, prefix, "r-1", 1)
    again = llm_shadow(*command, "--config", str(config), cwd=tmp_path)
    assert again.returncode == 0 and "no live replica" not in again.stderr


def test_rollback_wait_fails_when_no_replica_is_watching(tmp_path: Path,
                                                         redis_server: RedisServer) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    result = llm_shadow("rollback", "--wait", "--timeout", "1", "--config", str(config),
                        cwd=tmp_path)
    assert result.returncode == 1
    assert "rolled back: flags version 1" in result.stdout
    assert "FAILED: no live replica to wait for" in result.stderr


def test_an_unknown_route_is_refused_naming_the_known_ones(tmp_path: Path,
                                                           redis_server: RedisServer) -> None:
    config, prefix = write_config(tmp_path, redis_server.url)
    result = llm_shadow("set", "--route", "/nope", "--shadow", "5", "--config", str(config),
                        cwd=tmp_path)
    assert result.returncode == 2
    assert "route /nope not in" in result.stderr and "/openai, /anthropic" in result.stderr
    assert Redis.from_url(redis_server.url).get(f"{prefix}:flags") is None
    changes = llm_shadow("set", "--changes", '{"routes": {"/nope": {"divert_percent": 1}}}',
                         "--config", str(config), cwd=tmp_path)
    assert changes.returncode == 2 and "/nope" in changes.stderr


def test_force_writes_a_route_only_a_live_replica_serves(tmp_path: Path,
                                                         redis_server: RedisServer) -> None:
    config, prefix = write_config(tmp_path, redis_server.url)
    args = ("set", "--route", "/gemini", "--shadow", "5", "--force", "--config", str(config))
    refused = llm_shadow(*args, cwd=tmp_path)
    assert refused.returncode == 2 and "no live replica serves route /gemini" in refused.stderr
    heartbeat(redis_server, prefix, "r-gemini", 0, routes=["/openai", "/gemini"])
    written = llm_shadow(*args, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "/gemini: shadow 5%" in written.stdout and "r-gemini" in written.stderr


def test_report_refuses_a_route_that_matches_nothing(tmp_path: Path,
                                                     redis_server: RedisServer) -> None:
    config, _ = write_config(tmp_path, redis_server.url)
    result = llm_shadow("report", "--route", "/nope", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "--route /nope matches no route: configured /openai, /anthropic" in result.stderr
    known = llm_shadow("report", "--route", "/openai", "--config", str(config), cwd=tmp_path)
    assert known.returncode == 0, known.stderr


def test_status_shows_what_a_replica_applies_when_its_config_switches_off(
        tmp_path: Path, redis_server: RedisServer, upstream_url: str) -> None:
    """The stored snapshot says use_orchestrator true; the replica's config.json (hot
    reloaded) says false, so the replica applies it off: status says so, like /flagz."""
    config, prefix = write_config(tmp_path, redis_server.url)
    assert llm_shadow("set", "--shadow", "5", "--config", str(config),
                      cwd=tmp_path).returncode == 0
    replica = {"proxy": {"routes": routes_to(upstream_url)},
               "redis": {"url": redis_server.url, "key_prefix": prefix},
               "system": {"use_orchestrator": False},
               "flags": {"replica_id": "r-off", "config_reload_interval": 0.2}}
    with ProxyProcess(replica) as proxy:
        wait_for(lambda: httpx.get(proxy.admin_url + "/flagz").json()["version"] == 1,
                 message="replica on version 1")
        assert httpx.get(proxy.admin_url + "/flagz").json()["use_orchestrator"] is False
        status = llm_shadow("status", "--config", str(config), cwd=tmp_path)
        assert "use_orchestrator True" in status.stdout  # the stored snapshot
        assert "applies system.use_orchestrator OFF" in status.stdout
        assert str(proxy.config_path) in status.stdout
        assert "1 replica(s) apply less than the stored snapshot" in status.stdout
        data = json.loads(llm_shadow("status", "--json", "--config", str(config),
                                     cwd=tmp_path).stdout)
        (entry,) = data["replicas"]
        assert entry["use_orchestrator"] is False and entry["differs_from_snapshot"] is True
        assert entry["switched_off"] == ["system.use_orchestrator"]

        edited = json.loads(proxy.config_path.read_text())
        edited["system"]["use_orchestrator"] = True
        proxy.config_path.write_text(json.dumps(edited))

        def agrees() -> bool:
            out = llm_shadow("status", "--json", "--config", str(config), cwd=tmp_path).stdout
            return json.loads(out)["replicas"][0]["differs_from_snapshot"] is False

        wait_for(agrees, timeout=30, message="the reloaded replica agrees")
