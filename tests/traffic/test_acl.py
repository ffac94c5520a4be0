"""The documented Redis ACL for a replica (`minimal_acl()["replica"]`, in the README) is
enough for everything a sidecar does with Redis, and keeps it from writing the flags."""

from __future__ import annotations

import asyncio

import httpx
from redis.asyncio import Redis

from proxy.flags.store import minimal_acl
from proxy.flags.writer import update_flags_sync
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.traffic.conftest import Rig, make_config


def _users(server: RedisServer, prefix: str) -> dict[str, str]:
    async def create() -> None:
        admin = Redis.from_url(server.url)
        for role, rules in minimal_acl(prefix).items():
            await admin.execute_command("ACL", "SETUSER", role, "reset", f">{role}-pw", *rules)
        await admin.aclose()

    asyncio.run(create())
    base = f"127.0.0.1:{server.port}/0"
    return {role: f"redis://{role}:{role}-pw@{base}" for role in minimal_acl(prefix)}


def test_a_replica_user_runs_shadows_budget_report_and_learning(
    own_redis: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    urls = _users(own_redis, "acl")
    agree = ModelBehaviour(answer=lambda p: f"Answer to: {p}")
    with ModelFleet({"alpha": agree, "beta": agree}) as fleet:
        config = make_config(legacy_server[1].url, own_redis, "acl", models=fleet.entries(),
                             orchestrator={"simple_query_model_count": 2})
        config["redis"]["url"] = urls["replica"]
        with ProxyProcess(config, env=fleet.keys()) as proxy:
            rig = Rig(proxy, own_redis, "acl", legacy_server[0])
            version = update_flags_sync(urls["writer"], "acl", {"shadow_percent": 100},
                                        actor="test").version
            rig.wait_version(version)
            for i in range(3):
                assert httpx.post(proxy.url + "/openai/v1/chat/completions", timeout=30,
                                  json={"model": "m", "messages": [
                                      {"role": "user", "content": f"q{i}"}]}).status_code == 200
            wait_for(lambda: rig.statz()["shadow"]["completed"] == 3)
            wait_for(lambda: rig.statz()["report"]["pending"] == 0)
            stats = rig.statz()
            assert stats["shadow"]["skipped"].get("budget_unavailable", 0) == 0
            assert stats["report"]["dropped"] == 0
            assert "NOPERM" not in proxy.log() and "permission" not in proxy.log().lower()
