"""The ramp as an operator drives it: the `llm-shadow` console script in subprocesses,
beside a serving replica (`llm-shadow serve`, whose runner holds the ramp lock), on a real
redis-server. A manual `llm-shadow rollback` pauses the running ramp, `ramp status`
shows who did what and why, `resume` is refused while the kill switch is on, `ramp stop`
ends the ramp and frees the lock, and `ramp start` begins again. No command prints a
warning (redis-py used to warn about a synchronous Retry on every command)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import RedisServer, clean_env, wait_for
from tests.ramp.helpers import policy_data

pytestmark = pytest.mark.integration
CONSOLE = Path(sys.executable).parent / "llm-shadow"


class Operator:
    """Runs `llm-shadow` against one configuration, as a person at a shell would."""

    def __init__(self, config: Path):
        self.config = config
        self.stderr: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str]:
        done = subprocess.run([str(CONSOLE), *argv[:2], "--config", str(self.config),
                               *argv[2:]] if argv[0] == "ramp" else
                              [str(CONSOLE), argv[0], "--config", str(self.config),
                               *argv[1:]],
                              capture_output=True, text=True, env=clean_env(), timeout=60)
        self.stderr.append(done.stderr)
        return done.returncode, done.stdout + done.stderr


def ramp_state(server: RedisServer, prefix: str) -> dict[str, Any]:
    with redis.Redis(port=server.port) as client:
        raw = client.get(f"{prefix}:ramp:state")
        holder = client.get(f"{prefix}:ramp:lock")
    state = json.loads(raw) if raw else {}
    return {**state, "holder": holder.decode() if holder else None}


def test_an_operator_rollback_pauses_the_ramp_and_stop_ends_it(
        redis_server: RedisServer, upstream_url: str, tmp_path: Path) -> None:
    prefix = f"console-{uuid.uuid4().hex[:8]}"
    policy = tmp_path / "policies" / "ramp.json"
    policy.parent.mkdir()
    policy.write_text(json.dumps(policy_data(evaluation_interval_seconds=0.2)))
    config = tmp_path / "config.json"
    redis_config = {"url": redis_server.url, "key_prefix": prefix}
    config.write_text(json.dumps({"redis": redis_config}))
    shell = Operator(config)
    replica = ProxyProcess({"proxy": {"routes": routes_to(upstream_url)},
                            "redis": redis_config, "flags": {"replica_id": "pod-a"}})
    with replica:
        code, out = shell("ramp", "start", "--reason", "orchestrator v2",
                          "--actor", "cli:alice")
        assert code == 0, out
        wait_for(lambda: (ramp_state(redis_server, prefix)["holder"] or "").startswith(
            "pod-a|"), timeout=30, message="the serving replica holding the ramp lock")

        code, out = shell("rollback", "--reason", "divergence above noise",
                          "--actor", "cli:bob")
        assert code == 0, out
        wait_for(lambda: ramp_state(redis_server, prefix).get("status") == "paused",
                 timeout=30, message="the ramp paused by the replica")

        code, out = shell("ramp", "status")
        assert code == 0 and "ramp PAUSED on /openai" in out, out
        assert "by ramp:pod-a" in out and "changed by cli:bob" in out
        assert "'divergence above noise'" in out and "kill switch off -> on" in out
        assert "`llm-shadow ramp resume`" in out

        code, out = shell("ramp", "resume")
        assert code == 1 and "the kill switch is on" in out, out

        code, out = shell("ramp", "stop", "--reason", "enough for today", "--actor",
                          "cli:bob")
        assert code == 0 and "ramp stopped at step 1/3" in out, out
        state = ramp_state(redis_server, prefix)
        assert (state["status"], state["holder"], state["reason"]) == \
            ("stopped", None, "enough for today")
        code, out = shell("ramp", "status")
        assert "ramp STOPPED" in out and "lock: free (nothing to run)" in out, out
        assert "stop" in out and "cli:bob: enough for today" in out

        code, out = shell("ramp", "start", "--clear-kill", "--reason", "again")
        assert code == 0 and "ramp started on /openai" in out, out
        assert ramp_state(redis_server, prefix)["status"] == "running"
    assert not [err for err in shell.stderr if "Warning" in err], shell.stderr
