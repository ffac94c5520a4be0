"""End to end with real `llm-shadow serve` processes: cold start without Redis, three
replicas converging, rollback --wait, a black-holed Redis, config.json rollback."""

from __future__ import annotations

import itertools
import json
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from proxy.cli import main as cli_main
from tests.fakes.faultproxy import FaultProxy, redis_through
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import RedisServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.flags.helpers import FAST_FLAGS

pytestmark = pytest.mark.integration

TOKEN = "e2e-admin-token"
_prefixes = itertools.count()


def replica_config(upstream_url: str, redis_url: str, prefix: str, name: str,
                   **flags: Any) -> dict[str, Any]:
    return {"proxy": {"routes": routes_to(upstream_url)},
            "redis": {"url": redis_url, "key_prefix": prefix, "connect_timeout": 0.1,
                      "socket_timeout": 0.2},
            "flags": {**FAST_FLAGS, "replica_id": name, **flags}}


def flagz(proxy: ProxyProcess) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(proxy.admin_url + "/flagz", timeout=5).json()
    return body


def chat(proxy: ProxyProcess) -> httpx.Response:
    return httpx.post(proxy.url + "/openai/v1/chat/completions", timeout=10,
                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def cli(*argv: str) -> int | str | None:
    try:
        return cli_main.main(list(argv))
    except SystemExit as exc:
        return exc.code


def test_cold_start_without_redis_serves_legacy_at_once(upstream: FakeUpstream,
                                                        upstream_url: str) -> None:
    config = replica_config(upstream_url, "redis://127.0.0.1:9/0", "cold", "cold")
    with ProxyProcess(config) as proxy:
        response = chat(proxy)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "Answer to: hi"
        body = flagz(proxy)
        assert (body["state"], body["source"], body["version"]) == ("not_ready", "default", 0)


@pytest.fixture
def replicas(redis_server: RedisServer, upstream_url: str) -> Iterator[list[ProxyProcess]]:
    prefix = f"e2e-{next(_prefixes)}"
    procs = [ProxyProcess(replica_config(upstream_url, redis_server.url, prefix, f"r{n}"),
                          env={"LLM_SHADOW_ADMIN_TOKEN": TOKEN}) for n in range(3)]
    try:
        for proc in procs:
            proc.start(wait=False)
        for proc in procs:
            wait_for(proc.is_ready, timeout=30, message="replica ready")
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def test_three_replicas_converge_and_rollback_waits_for_all(
        replicas: list[ProxyProcess], redis_server: RedisServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = replicas[0].config_path
    prefix = json.loads(config.read_text())["redis"]["key_prefix"]
    common = ["--config", str(config)]
    assert cli("set", *common, "--shadow", "20", "--divert", "20") == 0
    wait_for(lambda: all(flagz(r)["version"] == 1 and r for r in replicas),
             message="every replica on version 1")
    assert all(flagz(r)["divert_percent"] == 20 for r in replicas)
    # A write through one replica's admin API reaches the others too.
    response = httpx.put(replicas[1].admin_url + "/flags", json={"divert_percent": 0},
                         headers={"authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert response.status_code == 200 and response.json()["version"] == 2
    wait_for(lambda: all(flagz(r)["version"] == 2 for r in replicas), message="version 2")
    # Heartbeats: every replica is listed, none behind.
    wait_for(lambda: cli("status", *common) == 0 and _listed(capsys, 3), message="3 replicas")
    capsys.readouterr()
    assert cli("rollback", *common, "--wait", "--reason", "e2e") == 0
    out = capsys.readouterr().out
    assert "all 3 live replicas applied version 3" in out
    for replica in replicas:
        body = flagz(replica)
        assert (body["version"], body["kill"], body["shadow_percent"]) == (3, True, 0)
    assert prefix.startswith("e2e-")


def _listed(capsys: pytest.CaptureFixture[str], count: int) -> bool:
    out = capsys.readouterr().out
    return f"{count} live replica(s)" in out and "BEHIND" not in out


def test_black_holed_redis_does_not_fail_or_block_requests(
        redis_server: RedisServer, upstream: FakeUpstream, upstream_url: str) -> None:
    with FaultProxy(redis_server.port) as fault:
        redis_through(fault)
        config = replica_config(upstream_url, fault.url, f"e2e-{next(_prefixes)}", "bh")
        with ProxyProcess(config) as proxy:
            wait_for(lambda: flagz(proxy)["state"] == "ready", message="ready")
            fault.set_mode("blackhole")
            states = set()
            for _ in range(20):
                assert chat(proxy).status_code == 200
                states.add(flagz(proxy)["state"])
            wait_for(lambda: flagz(proxy)["state"] == "failsafe", message="failsafe")
            assert chat(proxy).status_code == 200
            fault.set_mode("pass")
            wait_for(lambda: flagz(proxy)["state"] == "ready", message="recovered")
    assert len(upstream.requests) >= 21


def test_config_json_use_orchestrator_false_applies_on_sighup(
        redis_server: RedisServer, upstream_url: str) -> None:
    config = replica_config(upstream_url, redis_server.url, f"e2e-{next(_prefixes)}", "cfg",
                            config_reload_interval=0)
    with ProxyProcess(config) as proxy:
        wait_for(lambda: flagz(proxy)["state"] == "ready", message="ready")
        assert flagz(proxy)["use_orchestrator"] is True
        edited = json.loads(proxy.config_path.read_text())
        edited["system"] = {"use_orchestrator": False}
        proxy.config_path.write_text(json.dumps(edited))
        proxy.signal(signal.SIGHUP)
        wait_for(lambda: flagz(proxy)["use_orchestrator"] is False, message="reloaded")
        proxy.config_path.write_text("{ broken")
        proxy.signal(signal.SIGHUP)
        wait_for(lambda: "reload (SIGHUP) refused" in proxy.log(), message="refused")
        assert flagz(proxy)["use_orchestrator"] is False
        assert proxy.process is not None and proxy.process.poll() is None
