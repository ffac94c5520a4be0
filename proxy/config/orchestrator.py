"""The migration guide's sections: `system`, `feature_flags`, `orchestrator`, `models`,
`legacy_system`, with the guide's field names and defaults, extended where the proxy needs it.

Layer: pure core. The guide's keys keep their meaning; everything added here has a
default, so the guide's own `config.json` loads unchanged. The orchestrator's tuning knobs
sit in three small sub-sections (`selection`, `merge`, `learning`), each documented where
it is used (`proxy.orchestrator.selection`, `.merge`, `.learning`).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

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


class SelectionSettings(Section):
    """Thompson sampling over each model's learned record (`proxy.orchestrator.selection`).

    The weights say how much one piece of evidence moves a model's Beta posterior of
    being right: explicit feedback counts most, agreeing with the merged answer less, a
    merely valid answer least (valid is not the same as right).
    """

    seed: int | None = None
    prior_correct: float = Field(default=2.0, gt=0)
    prior_incorrect: float = Field(default=2.0, gt=0)
    feedback_weight: float = Field(default=3.0, ge=0)
    agreement_weight: float = Field(default=1.0, ge=0)
    validity_weight: float = Field(default=0.25, ge=0)
    failure_weight: float = Field(default=1.0, ge=0)
    latency_weight: float = Field(default=0.3, ge=0)
    latency_reference_seconds: float = Field(default=5.0, gt=0)
    cost_weight: float = Field(default=0.3, ge=0)


class MergeSettings(Section):
    """How answers are grouped and weighed (`proxy.orchestrator.merge`).

    `similarity_threshold`: two prose answers that state the same facts (the comparison's
    rules) and whose texts are at least this similar (0..1) count as the same answer.
    `collision_rate`: how likely a wrong answer coincides with another model's wrong
    answer; the smaller, the more agreement between models counts.
    """

    similarity_threshold: float = Field(default=0.9, ge=0, le=1)
    collision_rate: float = Field(default=0.1, gt=0, lt=1)


class LearningSettings(Section):
    """Learned records shared through Redis (`proxy.orchestrator.learning`)."""

    refresh_seconds: float = Field(default=2.0, gt=0)
    samples_kept: int = Field(default=200, ge=10)
    pending_limit: int = Field(default=10_000, ge=100)
    # How long after an answer feedback about it is accepted. Redis keeps which models
    # answered each orchestrated request that long: about 120 bytes per request (at 10
    # orchestrated requests/s and one day, about 100 MB).
    feedback_ttl_seconds: int = Field(default=24 * 3600, gt=0)


class OrchestratorSection(Section):
    endpoint: str | None = None
    # Whether the legacy request's credentials (headers, `?key=`) may go to `endpoint`.
    endpoint_forward_credentials: bool = False
    default_quality_threshold: float = Field(default=0.8, ge=0, le=1)
    default_cost_limit: float = Field(default=1.0, ge=0)
    simple_query_model_count: int = Field(default=1, ge=1)
    complex_reasoning_model_count: int = Field(default=2, ge=1)
    validation_model_count: int = Field(default=3, ge=1)
    model_timeout_seconds: float = Field(default=30.0, gt=0)
    enable_early_result_processing: bool = True
    # Most models one request may use, escalations below the quality threshold included.
    max_model_count: int = Field(default=4, ge=1)
    # A client may name its task type in this header (see proxy.orchestrator.classification).
    task_hint_header: str = "x-task-type"
    # Output tokens assumed for the cost estimate when the request sets no max_tokens;
    # also sent to the model as its max_tokens, so the estimate is a bound.
    assumed_output_tokens: int = Field(default=1024, ge=1)
    complex_prompt_chars: int = Field(default=4000, ge=1)
    complex_message_count: int = Field(default=8, ge=1)
    validation_policy_file: str = "policies/validation.json"
    max_connections: int = Field(default=64, ge=1)
    selection: SelectionSettings = SelectionSettings()
    merge: MergeSettings = MergeSettings()
    learning: LearningSettings = LearningSettings()

    @field_validator("task_hint_header")
    @classmethod
    def _lower_header(cls, value: str) -> str:
        if not value or any(ch.isspace() or ch == ":" for ch in value):
            raise ValueError("must be a header name, e.g. 'x-task-type'")
        return value.lower()


class ModelEntry(Section):
    name: str = Field(min_length=1)
    provider: str = "openai"
    cost_per_1m_tokens: float = Field(default=0.0, ge=0)
    input_cost_per_1m_tokens: float | None = Field(default=None, ge=0)
    output_cost_per_1m_tokens: float | None = Field(default=None, ge=0)
    avg_response_time: float = Field(default=2.0, gt=0)
    enabled: bool = True
    base_url: str | None = None
    api_key_env: str | None = None
    api: Literal["openai", "anthropic"] = "openai"
    # The model id sent to the API, when it differs from `name`.
    model_id: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)

    @field_validator("base_url")
    @classmethod
    def _base_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL, e.g. 'https://api.deepseek.com/v1'")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must not carry a query, fragment or credentials")
        return value.rstrip("/")


class LegacySystem(Section):
    enabled: bool = True
