"""The `shadow` and `divert` sections: limits, deadlines and budgets of the two paths
that call the orchestrator.

Layer: pure core.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from proxy.config.base import Section


class ShadowSection(Section):
    """Shadow calls (and noise resamples) run on their own client and pool, at most
    `max_concurrency` at a time (more are dropped, never queued), each within
    `timeout_seconds`, and together within `budget_usd_per_hour` (shared by all replicas
    through Redis; each call reserves `reserve_usd_per_call` before it starts and settles
    its real cost after). While the event loop lags more than `shed_lag_ms` (or the
    cgroup throttles the process for longer), no shadow or noise resample starts
    (`proxy.shadow.shedding`); 0 turns shedding off. 10 ms by default, from
    `bench/shedding.py` on a 2-core machine: an idle loop lags about 0.2 ms (1 ms peaks,
    the timer resolution; a rare 5 ms garbage collection), steady load below saturation
    keeps most probes under 5 ms but not all (5 ms shed part of the shadows at a third
    of capacity on a busy machine), and a saturated process lags 25-60 ms."""

    max_concurrency: int = Field(64, ge=1)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    tee_max_bytes: int = Field(4 * 1024 * 1024, gt=0)
    timeout_seconds: float = Field(60.0, gt=0)
    budget_usd_per_hour: float = Field(5.0, ge=0)
    reserve_usd_per_call: float = Field(0.01, ge=0)
    max_connections: int = Field(64, ge=1)
    shed_lag_ms: float = Field(10.0, ge=0)


class DivertSection(Section):
    """A divert falls back to legacy when the orchestrator fails before the first byte
    (`fallback_to_legacy`, and only while `legacy_system.enabled`); with `shadow_legacy`
    the legacy call runs as the shadow of the divert, so comparison continues.

    `fallback_after_seconds` is the one time budget of the orchestrator's attempt (model
    selection, every model call in turn, validation, and the answer up to the point it
    is committed to the client). 5 s by default: it is what a live request can lose on
    top of its legacy latency when the orchestrator fails slowly, and it holds the
    default models' typical answer (2-3 s, `avg_response_time`) with room for one more
    model below the quality threshold. Raise it for long or reasoning answers: a
    too-tight budget shows as `fallback_budget` fallbacks in the report and metrics."""

    fallback_to_legacy: bool = True
    shadow_legacy: bool = True
    fallback_after_seconds: float = Field(5.0, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "first_byte_timeout_seconds" in data:
            raise ValueError("first_byte_timeout_seconds was replaced by "
                             "fallback_after_seconds: one budget for the whole attempt, "
                             "first byte included (default 5)")
        return data
