"""The root of the configuration: the migration guide's `config.json` format, extended
with the sections the proxy needs.

Layer: pure core. Each section lives in the module of its concern (`proxy.config.proxy`,
`...orchestrator`, `...traffic`, `...shadow`, `...comparison`, `...pricing`,
`...telemetry`, `...log`); this module only assembles them.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from proxy.config.base import Section
from proxy.config.comparison import ComparisonSection
from proxy.config.log import LogSection
from proxy.config.orchestrator import (
    FeatureFlags,
    LegacySystem,
    ModelEntry,
    OrchestratorSection,
    SystemSection,
)
from proxy.config.pricing import Price
from proxy.config.proxy import ProxySection, RedisSection
from proxy.config.shadow import DivertSection, ShadowSection
from proxy.config.telemetry import TelemetrySection
from proxy.config.traffic import FlagsSection, TrafficSection


class Config(Section):
    version: str = "1.0.0"
    system: SystemSection = SystemSection()
    feature_flags: FeatureFlags = FeatureFlags()
    orchestrator: OrchestratorSection = OrchestratorSection()
    models: tuple[ModelEntry, ...] = ()
    legacy_system: LegacySystem = LegacySystem()
    proxy: ProxySection = ProxySection()
    redis: RedisSection = RedisSection()
    flags: FlagsSection = FlagsSection()
    traffic: TrafficSection = TrafficSection()
    shadow: ShadowSection = ShadowSection()
    divert: DivertSection = DivertSection()
    telemetry: TelemetrySection = TelemetrySection()
    pricing: dict[str, Price] = Field(default_factory=dict)
    comparison: ComparisonSection = ComparisonSection()
    log: LogSection = LogSection()

    @model_validator(mode="after")
    def _unique_model_names(self) -> Config:
        names = [model.name for model in self.models]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"models: name {name!r} appears more than once")
        return self

    @model_validator(mode="after")
    def _judge_references(self) -> Config:
        """The judge names one of `models` and only configured routes (errors name the
        judge's own key, not the top level)."""
        judge = self.comparison.judge
        problems: list[tuple[tuple[str | int, ...], str, object]] = []
        names = [model.name for model in self.models]
        if judge.model is not None and judge.model not in names:
            problems.append((("model",), f"{judge.model!r} is not one of `models` "
                             f"({', '.join(names) or 'none configured'})", judge.model))
        prefixes = [route.prefix for route in self.proxy.routes]
        for index, prefix in enumerate(judge.routes):
            if prefix not in prefixes:
                problems.append((("routes", index), f"{prefix!r} is not a configured "
                                 f"route ({', '.join(prefixes)})", prefix))
        if problems:
            raise ValidationError.from_exception_data("Config", [
                InitErrorDetails(type=PydanticCustomError("value_error", message),
                                 loc=("comparison", "judge", *where), input=value)
                for where, message, value in problems])
        return self
