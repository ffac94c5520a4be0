"""The `proxy` and `redis` sections: listeners, the route table, timeouts, limits.

Layer: pure core. The route table is the only thing that decides where traffic goes:
each route is a path prefix mapped to one fixed upstream base URL (this is not an open
proxy, see `proxy.routing`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from proxy.config.base import Section

Provider = Literal["openai", "anthropic"]

MIB = 1024 * 1024


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
        from urllib.parse import urlsplit

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


class RedisSection(Section):
    """Where the live flags, learned records, budgets and report aggregates live.

    Any URL redis-py accepts: `redis://user:password@host:6379/0`, `rediss://` for TLS;
    or `memory://`, an in-process store for a single process (the demo).
    """

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "llm-shadow"
    connect_timeout: float = Field(0.2, gt=0)
    socket_timeout: float = Field(0.3, gt=0)

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ValueError("must start with redis://, rediss://, unix:// or memory://")
        return value
