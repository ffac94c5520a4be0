"""The `shadow` and `divert` sections: limits, deadlines and budgets of the two paths
that call the orchestrator.

Layer: pure core.
"""

from __future__ import annotations

from pydantic import Field

from proxy.config.base import Section


class ShadowSection(Section):
    max_concurrency: int = Field(64, ge=1)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    tee_max_bytes: int = Field(4 * 1024 * 1024, gt=0)
    timeout_seconds: float = Field(60.0, gt=0)
    budget_usd_per_hour: float = Field(5.0, ge=0)


class DivertSection(Section):
    fallback_to_legacy: bool = True
    shadow_legacy: bool = True
    first_byte_timeout_seconds: float = Field(60.0, gt=0)
