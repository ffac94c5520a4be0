"""The `shadow` and `divert` sections: limits, deadlines and budgets of the two paths
that call the orchestrator.

Layer: pure core.
"""

from __future__ import annotations

from pydantic import Field

from proxy.config.base import Section


class ShadowSection(Section):
    """Shadow calls (and noise resamples) run on their own client and pool, at most
    `max_concurrency` at a time (more are dropped, never queued), each within
    `timeout_seconds`, and together within `budget_usd_per_hour` (shared by all replicas
    through Redis; each call reserves `reserve_usd_per_call` before it starts and settles
    its real cost after)."""

    max_concurrency: int = Field(64, ge=1)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    tee_max_bytes: int = Field(4 * 1024 * 1024, gt=0)
    timeout_seconds: float = Field(60.0, gt=0)
    budget_usd_per_hour: float = Field(5.0, ge=0)
    reserve_usd_per_call: float = Field(0.01, ge=0)
    max_connections: int = Field(64, ge=1)


class DivertSection(Section):
    """A divert falls back to legacy when the orchestrator fails before the first byte
    (`fallback_to_legacy`, and only while `legacy_system.enabled`); with `shadow_legacy`
    the legacy call runs as the shadow of the divert, so comparison continues."""

    fallback_to_legacy: bool = True
    shadow_legacy: bool = True
    first_byte_timeout_seconds: float = Field(60.0, gt=0)
