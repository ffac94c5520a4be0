"""The first line of the Redis commands: which Redis, said without its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli.preamble import describe_redis, preamble
from proxy.config import load_config


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
