"""The first line of the Redis commands: which Redis, said without its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli.preamble import describe_redis, describe_section, preamble, redacted_url
from proxy.config import load_config
from proxy.config.proxy import RedisSection


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "Redis 127.0.0.1:6379 db 0"),
    ("redis://redis.prod", "Redis redis.prod:6379 db 0"),
    ("rediss://user:s3cret@redis.prod:6380/2", "Redis redis.prod:6380 db 2 (TLS) (user user)"),
    ("redis://:s3cret@h:1/0?db=5", "Redis h:1 db 5"),
    ("unix:///run/redis.sock?db=3", "Redis unix:/run/redis.sock db 3"),
    ("memory://demo", "in-process store (memory://): this process only"),
])
def test_describe_redis_never_shows_a_password(url: str, shown: str) -> None:
    assert describe_redis(url) == shown


def test_preamble_says_where_the_url_came_from(tmp_path: Path) -> None:
    env = {"LLM_SHADOW_REDIS_URL": "redis://:pw@r:1/0"}
    path = tmp_path / "c.json"
    path.write_text('{"redis": {"key_prefix": "p"}}')
    with_file = load_config(str(path), env=env)
    assert preamble(with_file) == (f"llm-shadow: config {path}; Redis r:1 db 0, key prefix p "
                                   f"(from LLM_SHADOW_REDIS_URL)")
    assert preamble(with_file, redis_flag=True).endswith("(from --redis-url)")


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
    ("rediss://user:pw@h:1/0", "rediss://user:***@h:1/0"),
    ("redis://user:p@ss@h:1/0", "redis://user:***@h:1/0"),
    ("redis://h:1/0?password=s3cret&db=2", "redis://h:1/0?password=***&db=2"),
    ("unix:///run/r.sock?password=s3cret", "unix:///run/r.sock?password=***"),
    ("memory://demo", "memory://demo")])
def test_a_url_is_shown_as_typed_without_any_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_sentinel_is_described_by_its_sentinels_not_the_urls_host() -> None:
    section = RedisSection.model_validate({
        "url": "rediss://:s3cret@ignored/2",
        "sentinel": {"addresses": ["10.0.0.5:26379", "10.0.0.6:26379"],
                     "service_name": "shop"}})
    assert describe_section(section) == (
        "Redis Sentinel service shop via 10.0.0.5:26379, 10.0.0.6:26379 db 2 (TLS), "
        "key prefix llm-shadow")


def test_cluster_mode_names_the_hash_tagged_prefix_its_keys_carry() -> None:
    section = RedisSection.model_validate({"url": "redis://:s3cret@node-1:7000",
                                           "cluster": True, "key_prefix": "shop"})
    assert describe_section(section) == "Redis Cluster via node-1:7000 db 0, key prefix {shop}"
