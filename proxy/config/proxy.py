"""The `proxy` and `redis` sections: listeners, the route table, timeouts, limits.

Layer: pure core. The route table is the only thing that decides where traffic goes:
each route is a path prefix mapped to one fixed upstream base URL (this is not an open
proxy, see `proxy.routing`).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from proxy.config.base import Section

Provider = Literal["openai", "anthropic"]

MIB = 1024 * 1024
# The in-process store (see `proxy.redisclient`): one process, no Redis.
MEMORY_URL = "memory://"


class Listen(Section):
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)


class AdminListen(Section):
    host: str = "127.0.0.1"
    port: int = Field(8788, ge=0, le=65535)


class Timeouts(Section):
    """Per-route upstream timeouts, in seconds.

    `read` applies to each read, not to the whole response: a reasoning model may stay
    silent for a minute before its first token, so the default is generous.
    """

    connect: float = Field(5.0, gt=0)
    read: float = Field(300.0, gt=0)
    write: float = Field(30.0, gt=0)
    pool: float = Field(5.0, gt=0)


class Route(Section):
    prefix: str
    upstream: str
    provider: Provider = "openai"
    timeouts: Timeouts = Timeouts()
    max_body_bytes: int = Field(32 * MIB, gt=0)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError("must start with '/', not end with '/', e.g. '/openai'")
        if any(part in (".", "..") for part in value.split("/")) or "%" in value:
            raise ValueError("must not contain dot segments or percent-encoding")
        return value

    @field_validator("upstream")
    @classmethod
    def _upstream_shape(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL, e.g. 'https://api.openai.com'")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must not carry a query, fragment or credentials")
        return value.rstrip("/")


class Pool(Section):
    """Connection pool of the legacy (primary) client; the shadow client has its own."""

    max_connections: int = Field(512, gt=0)
    max_keepalive_connections: int = Field(128, ge=0)
    keepalive_expiry: float = Field(30.0, ge=0)


class ProxySection(Section):
    listen: Listen = Listen()
    admin: AdminListen = AdminListen()
    routes: tuple[Route, ...] = (
        Route(prefix="/openai", upstream="https://api.openai.com", provider="openai"),
        Route(prefix="/anthropic", upstream="https://api.anthropic.com", provider="anthropic"),
    )
    pool: Pool = Pool()
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    http_parser: Literal["h11", "httptools"] = "h11"
    body_read_timeout: float = Field(60.0, gt=0)
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    keepalive_timeout: float = Field(75.0, gt=0)
    graceful_shutdown_seconds: float = Field(30.0, ge=0)
    request_id_header: str = "x-request-id"

    @model_validator(mode="after")
    def _unique_prefixes(self) -> ProxySection:
        prefixes = [route.prefix for route in self.routes]
        for prefix in prefixes:
            if prefixes.count(prefix) > 1:
                raise ValueError(f"routes: prefix {prefix!r} appears more than once")
        if self.listen.port == self.admin.port and self.listen.port != 0:
            raise ValueError("listen.port and admin.port must differ")
        return self


class SentinelSection(Section):
    """Redis Sentinel: where the sentinels are and which primary they watch.

    The data nodes' credentials, database and TLS still come from `redis.url`
    (`rediss://` for TLS, `user:password@` in it); its host and port are not used, since
    the sentinels name the primary. The sentinels' own credentials and TLS are here.
    """

    addresses: tuple[str, ...] = Field(min_length=1)
    service_name: str = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    tls_ca_file: str | None = None

    @field_validator("addresses")
    @classmethod
    def _host_port(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{address!r} must be host:port, e.g. '10.0.0.5:26379'")
        return value

    def hosts(self) -> list[tuple[str, int]]:
        return [(host.strip("[]"), int(port)) for host, _, port in
                (address.rpartition(":") for address in self.addresses)]


class RedisSection(Section):
    """Where the live flags, learned records, budgets, report aggregates and the ramp live.

    Any URL redis-py accepts: `redis://user:password@host:6379/0`, `rediss://` for TLS;
    or `memory://`, an in-process store for a single process (the demo). High
    availability: `sentinel` (the sentinels find the primary) or `cluster: true` (the URL
    names one node of a Redis Cluster; every key then carries the hash tag
    `{key_prefix}` so that each multi-key script runs in one slot).
    """

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("llm-shadow", min_length=1)
    connect_timeout: float = Field(0.2, gt=0)
    socket_timeout: float = Field(0.3, gt=0)
    sentinel: SentinelSection | None = None
    cluster: bool = False

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://", MEMORY_URL)):
            raise ValueError("must start with redis://, rediss://, unix:// or memory://")
        return value

    @model_validator(mode="after")
    def _one_topology(self) -> RedisSection:
        if self.sentinel is not None and self.cluster:
            raise ValueError("sentinel and cluster: choose one (a Redis Cluster fails over "
                             "by itself)")
        if (self.sentinel is not None or self.cluster) and \
                self.url.startswith((MEMORY_URL, "unix://")):
            mode = "sentinel" if self.sentinel is not None else "cluster"
            raise ValueError(f"url: {mode} needs a redis:// or rediss:// URL, not "
                             f"{self.url.split('://')[0]}://")
        if self.cluster and urlsplit(self.url).path.strip("/") not in ("", "0"):
            raise ValueError("url: a Redis Cluster has only database 0")
        return self

    @property
    def keyspace(self) -> str:
        """The root of every key and channel name. In cluster mode the prefix is wrapped
        in a hash tag (`{llm-shadow}`), unless it already carries one, so that all keys
        share one slot; otherwise it is the prefix itself, so single-node and Sentinel
        deployments keep their key names."""
        if not self.cluster or _has_hash_tag(self.key_prefix):
            return self.key_prefix
        return f"{{{self.key_prefix}}}"


def _has_hash_tag(prefix: str) -> bool:
    start = prefix.find("{")
    end = prefix.find("}", start + 1)
    return start >= 0 and end > start + 1
