"""The models the orchestrator may call: the guide's `AIModel`, and the registry built
from `config.json` `models` or from `AIOrchestrator.register_model`.

Layer: pure core. A model is a value: its name, its provider, where its API lives
(`base_url`, the OpenAI SDK's form, e.g. `https://api.deepseek.com/v1`), which API it
speaks, the *name* of the environment variable holding its key (never the key), its
prices and the response time the operator expects of it. The expected response time and
the prices are what selection starts from before anything has been learned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from proxy.config.orchestrator import ModelEntry

ModelApi = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class AIModel:
    """One model, as the guide's `AIModel(name=..., provider=..., cost_per_1m_tokens=...,
    avg_response_time=...)`, plus where and how to call it."""

    name: str
    provider: str = "openai"
    cost_per_1m_tokens: float = 0.0
    avg_response_time: float = 2.0
    enabled: bool = True
    base_url: str | None = None
    api_key_env: str | None = None
    input_cost_per_1m_tokens: float | None = None
    output_cost_per_1m_tokens: float | None = None
    api: ModelApi = "openai"
    model_id: str | None = None
    timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("AIModel needs a name")
        if self.avg_response_time <= 0:
            raise ValueError(f"model {self.name!r}: avg_response_time must be > 0")
        prices = (self.cost_per_1m_tokens, self.input_cost_per_1m_tokens,
                  self.output_cost_per_1m_tokens)
        if any(price is not None and price < 0 for price in prices):
            raise ValueError(f"model {self.name!r}: prices must be >= 0")

    @property
    def input_price(self) -> float:
        """USD per million input tokens (the flat price when no separate one is set)."""
        if self.input_cost_per_1m_tokens is not None:
            return self.input_cost_per_1m_tokens
        return self.cost_per_1m_tokens

    @property
    def output_price(self) -> float:
        if self.output_cost_per_1m_tokens is not None:
            return self.output_cost_per_1m_tokens
        return self.cost_per_1m_tokens

    @property
    def api_model(self) -> str:
        """The model id sent in the API request body."""
        return self.model_id or self.name

    @property
    def host(self) -> str:
        """The API host, for telemetry (`server.address`); never the full URL."""
        if not self.base_url:
            return ""
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int | None:
        """The API port, for telemetry (`server.port`), default ports included."""
        if not self.base_url:
            return None
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @classmethod
    def from_entry(cls, entry: ModelEntry) -> AIModel:
        return cls(
            name=entry.name, provider=entry.provider,
            cost_per_1m_tokens=entry.cost_per_1m_tokens,
            avg_response_time=entry.avg_response_time, enabled=entry.enabled,
            base_url=entry.base_url, api_key_env=entry.api_key_env,
            input_cost_per_1m_tokens=entry.input_cost_per_1m_tokens,
            output_cost_per_1m_tokens=entry.output_cost_per_1m_tokens,
            api=entry.api, model_id=entry.model_id, timeout_seconds=entry.timeout_seconds,
        )


class ModelRegistry:
    """Models by name, in registration order (the static order used when model selection
    is switched off, as in the legacy system)."""

    def __init__(self, models: Iterable[AIModel] = ()):
        self._models: dict[str, AIModel] = {}
        for model in models:
            self.register(model)

    @classmethod
    def from_config(cls, entries: Iterable[ModelEntry]) -> ModelRegistry:
        return cls(AIModel.from_entry(entry) for entry in entries)

    def register(self, model: AIModel) -> None:
        """Add a model, or replace the one of the same name (keeping its position)."""
        self._models[model.name] = model

    def unregister(self, name: str) -> None:
        self._models.pop(name, None)

    def get(self, name: str) -> AIModel | None:
        return self._models.get(name)

    def enabled(self) -> tuple[AIModel, ...]:
        return tuple(model for model in self._models.values() if model.enabled)

    def __iter__(self) -> Iterator[AIModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models
