"""The first line of every command that talks to Redis: which configuration file and
which Redis it used.

Layer: composition (pure formatting; the commands print it). Why: run from the wrong
folder, a command silently used the built-in defaults (Redis on 127.0.0.1:6379) and
reported on, or rolled back, an unrelated Redis. The line names the file ("no config
file: built-in defaults" when there is none), the Redis host, database and key prefix,
and where the URL came from; never a password. It goes to standard error, so standard
output stays what scripts parse (`status --json`, `report --format json`).

    llm-shadow: config /etc/llm-shadow/config.json; Redis redis:6379 db 0 (TLS),
        key prefix llm-shadow (from LLM_SHADOW_REDIS_URL)       (on one line)
"""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from proxy.config import Settings
from proxy.config.proxy import RedisSection


def preamble(settings: Settings, *, redis_flag: bool = False) -> str:
    """The line; `redis_flag` says the URL came from `--redis-url`."""
    where = f"config {settings.source}" if settings.has_file else \
        "no config file: built-in defaults"
    origin = ("--redis-url" if redis_flag else settings.from_env.get("redis.url")
              or (None if settings.has_file else "built-in default"))
    shown = describe_section(settings.config.redis)
    return f"llm-shadow: {where}; {shown}{f' (from {origin})' if origin else ''}"


def describe_section(redis: RedisSection) -> str:
    """The Redis the commands reach and the key prefix they use, as the stores resolve
    them: with Sentinel the sentinels name the primary (the URL's host is not used), and
    in cluster mode the keys carry the hash tag."""
    if redis.sentinel is not None:
        parts = urlsplit(redis.url)
        tls = " (TLS)" if parts.scheme.lower() == "rediss" else ""
        where = (f"Redis Sentinel service {redis.sentinel.service_name} via "
                 f"{', '.join(redis.sentinel.addresses)} db {_db(parts.path, parts.query)}"
                 f"{tls}")
    elif redis.cluster:
        where = describe_redis(redis.url).replace("Redis ", "Redis Cluster via ", 1)
    else:
        where = describe_redis(redis.url)
    return f"{where}, key prefix {redis.keyspace}"


def describe_redis(url: str) -> str:
    """`Redis host:port db N`, `Redis unix:/path db N`, or `in-process store (memory://)`;
    the user name is kept, the password never."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return "in-process store (memory://): this process only"
    db = _db(parts.path, parts.query)
    user = f"user {parts.username}, " if parts.username else ""
    if scheme == "unix":
        return f"Redis unix:{parts.path} db {db}{_user(user)}"
    try:
        port = str(parts.port or 6379)
    except ValueError:
        port = "?"
    host = parts.hostname or "?"
    tls = " (TLS)" if scheme == "rediss" else ""
    return f"Redis {host}:{port} db {db}{tls}{_user(user)}"


def _db(path: str, query: str) -> str:
    if (values := parse_qs(query).get("db")):
        return values[0]
    number = path.strip("/")
    return number if number.isdigit() else "0"


def _user(text: str) -> str:
    return f" ({text.rstrip(', ')})" if text else ""


def redacted_url(url: str) -> str:
    """The URL as given, for a person who typed it (the demo's `--redis-url`), with every
    password replaced by `***`: the one before the `@` and a `password=` in the query,
    which redis-py also accepts."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        netloc = f"{user}:***@{netloc.rpartition('@')[2]}"
    query = urlencode([(k, "***" if k.lower() == "password" else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return f"{parts.scheme}://{netloc}{parts.path}{'?' if query else ''}{query}"
