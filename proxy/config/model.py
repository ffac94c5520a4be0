"""The root of the configuration: the migration guide's `config.json` format, extended
with the sections the proxy needs.

Layer: pure core. Each section lives in the module of its concern (`proxy.config.proxy`,
`...orchestrator`, `...traffic`, `...shadow`, `...comparison`, `...pricing`,
`...telemetry`, `...log`); this module only assembles them.
"""

from __future__ import annotations

from pydantic import Field, model_validator

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
