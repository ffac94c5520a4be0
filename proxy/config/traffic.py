"""The `flags` and `traffic` sections: how live flags are watched and which requests are
eligible for shadow and divert.

Layer: pure core.

Timing defaults follow the replica state machine (`proxy.flags.watcher`):
poll every 250 ms, stale after 1.5 s without a confirmed read, fail-safe (legacy only)
after 3 s. For a hard one-second rollback bound under a network partition, set
`max_stale <= 1 - poll_interval`; the cost is that any Redis blip that long pauses the
experiment (safe, but it should be a conscious choice).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from proxy.config.base import Section

DEFAULT_ELIGIBLE_PATHS: tuple[str, ...] = (
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/embeddings",
)


def two_decimals(value: float) -> float:
    """A percentage with at most two decimals (one basis point), normalised.

    Buckets are basis points, so 12.345 % cannot be honoured; refusing it beats rounding
    silently.
    """
    scaled = value * 100
    if abs(scaled - round(scaled)) > 1e-6:
        raise ValueError("at most two decimals (one basis point), e.g. 12.5 or 0.25")
    return round(scaled) / 100


class FlagsSection(Section):
    """How a replica keeps its in-memory copy of the flag snapshot, which lives in Redis
    (`redis.url: "memory://"` for one process without Redis; the obsolete `flags.store`
    is translated by `proxy.config.load`)."""

    poll_interval: float = Field(0.25, gt=0, le=5)
    stale_after: float = Field(1.5, gt=0)
    max_stale: float = Field(3.0, gt=0)
    reconnect_max_delay: float = Field(2.0, gt=0)
    ping_interval: float = Field(1.0, gt=0)
    subscriber_watchdog: float = Field(3.0, gt=0)
    heartbeat_interval: float = Field(1.0, gt=0)
    heartbeat_ttl: float = Field(5.0, gt=0)
    replica_id: str | None = Field(None, min_length=1, max_length=200)
    force_legacy_file: str | None = None
    config_reload_interval: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> FlagsSection:
        if self.stale_after > self.max_stale:
            raise ValueError("stale_after must not exceed max_stale")
        if self.poll_interval >= self.stale_after:
            raise ValueError("poll_interval must be shorter than stale_after")
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError("heartbeat_ttl must be longer than heartbeat_interval")
        if self.subscriber_watchdog <= self.ping_interval:
            raise ValueError("subscriber_watchdog must be longer than ping_interval")
        return self


class TrafficSection(Section):
    """Which requests may leave the legacy path, and the default percentages.

    The percentages here only seed the flag snapshot while Redis holds none (version 0);
    the live values are the snapshot's. `bucket_header` names the request header whose
    value keeps a conversation (or tenant) in one bucket; without it the request id is
    used.
    """

    bucket_header: str = "x-conversation-id"
    eligible_paths: tuple[str, ...] = DEFAULT_ELIGIBLE_PATHS
    shadow_percent: float = Field(0.0, ge=0, le=100)
    divert_percent: float = Field(0.0, ge=0, le=100)

    @field_validator("shadow_percent", "divert_percent")
    @classmethod
    def _percent_precision(cls, value: float) -> float:
        return two_decimals(value)

    @field_validator("eligible_paths")
    @classmethod
    def _paths_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} must start with '/', e.g. '/v1/chat/completions'")
        return value

    @field_validator("bucket_header")
    @classmethod
    def _header_lower(cls, value: str) -> str:
        return value.strip().lower()
