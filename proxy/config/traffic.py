"""The `flags` and `traffic` sections: how live flags are watched and which requests are
eligible for shadow and divert.

Layer: pure core.
"""

from __future__ import annotations

from pydantic import Field

from proxy.config.base import Section

DEFAULT_ELIGIBLE_PATHS: tuple[str, ...] = (
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/embeddings",
)


class FlagsSection(Section):
    poll_interval: float = Field(0.25, gt=0, le=5)
    stale_after: float = Field(1.5, gt=0)
    max_stale: float = Field(3.0, gt=0)
    force_legacy_file: str | None = None


class TrafficSection(Section):
    bucket_header: str = "x-conversation-id"
    eligible_paths: tuple[str, ...] = DEFAULT_ELIGIBLE_PATHS
    shadow_percent: float = Field(0.0, ge=0, le=100)
    divert_percent: float = Field(0.0, ge=0, le=100)
