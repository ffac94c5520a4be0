"""The migration guide's sections: `system`, `feature_flags`, `orchestrator`, `models`,
`legacy_system`, with the guide's field names and defaults, extended where the proxy needs it.

Layer: pure core.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from proxy.config.base import Section


class SystemSection(Section):
    use_orchestrator: bool = True
    migration_mode: Literal["gradual", "full"] = "gradual"
    rollback_enabled: bool = True


class FeatureFlags(Section):
    enable_model_selection: bool = True
    enable_parallel_execution: bool = True
    enable_result_merging: bool = True
    enable_validation: bool = True
    enable_performance_tracking: bool = True


class OrchestratorSection(Section):
    endpoint: str | None = None
    default_quality_threshold: float = Field(0.8, ge=0, le=1)
    default_cost_limit: float = Field(1.0, ge=0)
    simple_query_model_count: int = Field(1, ge=1)
    complex_reasoning_model_count: int = Field(2, ge=1)
    validation_model_count: int = Field(3, ge=1)
    model_timeout_seconds: float = Field(30.0, gt=0)
    enable_early_result_processing: bool = True


class ModelEntry(Section):
    name: str = Field(min_length=1)
    provider: str = "openai"
    cost_per_1m_tokens: float = Field(0.0, ge=0)
    input_cost_per_1m_tokens: float | None = Field(None, ge=0)
    output_cost_per_1m_tokens: float | None = Field(None, ge=0)
    avg_response_time: float = Field(2.0, gt=0)
    enabled: bool = True
    base_url: str | None = None
    api_key_env: str | None = None
    api: Literal["openai", "anthropic"] = "openai"


class LegacySystem(Section):
    enabled: bool = True
