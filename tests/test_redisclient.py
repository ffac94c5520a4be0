"""The client factory and the `redis` section: one factory for every topology, key names
that do not move for single-node deployments, a hash tag in cluster mode, clear refusals,
and no warning from redis-py (the asyncio `Retry` class). Real Sentinel and Cluster
behaviour is in tests/redisha/."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry

from proxy.config import ConfigError, load_config, parse_config
from proxy.config.proxy import RedisSection
from proxy.flags.store import Keys
from proxy.redisclient import in_process, redis_client


def section(**fields: Any) -> RedisSection:
    return parse_config({"redis": fields}, "config.json").redis


@pytest.mark.parametrize(("fields", "keyspace"), [
    ({}, "llm-shadow"),
    ({"key_prefix": "shop"}, "shop"),
    ({"sentinel": {"addresses": ["10.0.0.1:26379"], "service_name": "m"}}, "llm-shadow"),
    ({"cluster": True}, "{llm-shadow}"),
    ({"cluster": True, "key_prefix": "shop"}, "{shop}"),
    ({"cluster": True, "key_prefix": "{team}:shop"}, "{team}:shop"),
])
def test_keys_keep_their_names_except_in_a_cluster(fields: dict[str, Any],
                                                   keyspace: str) -> None:
    assert section(**fields).keyspace == keyspace


def test_in_a_cluster_every_key_hashes_to_one_slot() -> None:
    from redis.crc import key_slot

    root = section(cluster=True).keyspace
    keys = Keys(root)
    names = [keys.flags, keys.audit, keys.changed, keys.replica("pod-a"),
             f"{root}:ramp:state", f"{root}:ramp:lock", f"{root}:ramp:history",
             f"{root}:budget:shadow:2026010100", f"{root}:report:routes",
             f"{root}:learning:index"]
    assert len({key_slot(name.encode()) for name in names}) == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"cluster": True, "sentinel": {"addresses": ["h:1"], "service_name": "m"}},
     "redis: sentinel and cluster: choose one"),
    ({"url": "memory://", "cluster": True}, "cluster needs a redis:// or rediss:// URL"),
    ({"url": "unix:///tmp/r.sock", "sentinel": {"addresses": ["h:1"], "service_name": "m"}},
     "sentinel needs a redis:// or rediss:// URL"),
    ({"url": "redis://h:6379/3", "cluster": True}, "only database 0"),
    ({"sentinel": {"addresses": ["10.0.0.1"], "service_name": "m"}},
     "redis.sentinel.addresses: Value error, '10.0.0.1' must be host:port"),
    ({"sentinel": {"addresses": [], "service_name": "m"}}, "redis.sentinel.addresses"),
    ({"sentinel": {"addresses": ["h:1"]}}, "redis.sentinel.service_name: Field required"),
    ({"sentinel": {"addresses": ["h:1"], "service_name": "m", "pasword": "x"}},
     "redis.sentinel.pasword: unknown key"),
])
def test_refusals_name_the_file_and_the_key(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        section(**fields)
    assert str(caught.value).startswith("config.json: redis")
    assert message.replace("Value error, ", "") in str(caught.value)


def test_the_sentinel_password_comes_from_the_environment_and_never_prints(
        tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"redis": {"sentinel": {"addresses": ["10.0.0.1:26379"],
                                                       "service_name": "m"}}}))
    settings = load_config(str(path), env={"LLM_SHADOW_REDIS_SENTINEL_PASSWORD": "s3cret"})
    sentinel = settings.config.redis.sentinel
    assert sentinel is not None and sentinel.password is not None
    assert sentinel.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings.config) and "s3cret" not in str(sentinel)


def test_obsolete_flag_store_memory_means_memory_url_and_warns_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "llm_shadow.config")
    for _ in range(3):
        config = parse_config({"flags": {"store": "memory"},
                               "redis": {"url": "redis://h:6379/0"}}, "old.json")
        assert config.redis.url == "memory://"
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and 'write that instead' in warned[0]
    assert parse_config({"flags": {"store": "redis"}}).redis.url == "redis://127.0.0.1:6379/0"


def test_an_unknown_flag_store_says_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r'config.json: flags.store: .*"url": "memory://"'):
        parse_config({"flags": {"store": "etcd"}}, "config.json")


def test_single_node_client_uses_the_asyncio_retry_and_no_retries() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = redis_client("redis://127.0.0.1:1/2", connect_timeout=0.2, socket_timeout=0.3)
    assert isinstance(client, Redis) and not in_process(client)
    kwargs = client.connection_pool.connection_kwargs
    assert isinstance(kwargs["retry"], Retry) and kwargs["retry"]._retries == 0
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"], kwargs["db"]) == \
        (0.2, 0.3, 2)
    asyncio.run(client.aclose())


def test_sentinel_client_takes_data_credentials_from_the_url_and_its_own_from_the_section(
        ) -> None:
    redis = section(url="rediss://app:data-pw@ignored:1/4", sentinel={
        "addresses": ["10.0.0.1:26379", "[::1]:26380"], "service_name": "orders",
        "username": "watcher", "password": "sentinel-pw", "tls": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = redis_client(redis, connect_timeout=0.2, socket_timeout=0.3)
    pool: Any = client.connection_pool
    data = pool.connection_kwargs
    assert (pool.service_name, data["username"], data["password"], data["db"]) == \
        ("orders", "app", "data-pw", 4)
    assert "host" not in data and pool.connection_class.__name__ == \
        "SentinelManagedSSLConnection"
    sentinels = pool.sentinel_manager.sentinels
    watched = [s.connection_pool.connection_kwargs for s in sentinels]
    assert [(w["host"], w["port"]) for w in watched] == [("10.0.0.1", 26379), ("::1", 26380)]
    assert all(w["username"] == "watcher" and w["password"] == "sentinel-pw" for w in watched)
    assert all(s.connection_pool.connection_class.__name__ == "SSLConnection"
               for s in sentinels)
    asyncio.run(client.aclose())


def test_cluster_client_is_a_cluster_client() -> None:
    client = redis_client(section(url="redis://127.0.0.1:1/0", cluster=True),
                          connect_timeout=0.2, socket_timeout=0.3)
    assert isinstance(client, RedisCluster)
    asyncio.run(client.aclose())


def test_memory_url_is_one_in_process_store_per_process() -> None:
    async def scenario() -> bytes | None:
        first = redis_client("memory://", connect_timeout=0.2, socket_timeout=0.2)
        second = redis_client("memory://", connect_timeout=0.2, socket_timeout=0.2)
        assert in_process(first) and in_process(second)
        await first.set("k", b"v")
        return await second.get("k")

    assert asyncio.run(scenario()) == b"v"
