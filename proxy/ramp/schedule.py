"""The ramp policy (`policies/ramp.json`): the schedule of steps and the guardrails that
gate each promotion.

Layer: pure core (the file is read by `proxy.config.load.read_json_file`, the one place
configuration files are read; errors name the file and the dotted key the same way).

Scope. `route` set (e.g. "/openai"): the ramp writes that route's override in the flag
snapshot (`routes./openai.shadow_percent` / `divert_percent`) and measures that route.
`route` null: the ramp writes the global percentages and measures every route listed in
`measure_routes` (each must pass on its own; a route with its own override in the
snapshot keeps it). One ramp runs at a time.

Steps only go up (each percentage at least the previous step's): buckets are sticky, so
raising a percentage only adds conversations, and a schedule that lowered one would drop
some mid-conversation. Each step needs `min_duration_seconds` in the step and
`min_compared` comparisons measured *in that step* (at least 1: a ramp never promotes
on no data). A step may override guardrails by name (`null` switches one off there).

Guardrails (see `proxy.ramp.guardrails` for the statistics): divergence above the noise
floor, orchestrator error rate, divert fallback rate (only in steps that divert),
latency delta p95, orchestrator cost per request. `confidence` sets the interval used
to call a guardrail clearly passed or clearly breached.

Rollback (`on_rollback`): "kill" turns the kill switch on (globally for a global ramp:
`FlagWriter.rollback`, kill with percentages 0 and route overrides removed; for a route
ramp: that route's `kill` with its percentages 0); "zero" sets the ramp's percentages
to 0 and leaves the kill switch alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from proxy.comparison.noise import MIN_SAMPLES
from proxy.config.base import Section
from proxy.config.load import read_json_file, validated
from proxy.config.traffic import two_decimals

Percent = Annotated[float, Field(ge=0, le=100), AfterValidator(two_decimals)]
Fraction = Annotated[float, Field(ge=0, le=1)]
MAX_STEPS = 100


def check_route_prefix(value: str) -> str:
    if not value.startswith("/") or value.endswith("/") or len(value) > 200:
        raise ValueError(f"route prefix {value!r} must look like '/openai'")
    return value


RoutePrefix = Annotated[str, AfterValidator(check_route_prefix)]


class DivergenceGuard(Section):
    """Divergence (minor + major) above the noise floor, as a difference of rates."""

    max_excess: float = Field(default=0.1, gt=0, le=1)
    max_excess_major: float | None = Field(default=None, gt=0, le=1)
    # Below this many compared pairs or noise pairs nothing is concluded (noise.py).
    min_samples: int = Field(default=MIN_SAMPLES, ge=MIN_SAMPLES)


class RateGuard(Section):
    """A failure rate (orchestrator errors, divert fallbacks) and the requests it needs."""

    max: Fraction
    min_requests: int = Field(default=30, ge=1)


class LatencyGuard(Section):
    """The p95 of (orchestrator - legacy) latency per compared request, in ms."""

    max_delta_ms: float = Field(allow_inf_nan=False)
    min_samples: int = Field(default=30, ge=1)


class CostGuard(Section):
    """Orchestrator USD per request, absolute and/or relative to legacy's."""

    max_usd: float | None = Field(default=None, ge=0)
    max_ratio_to_legacy: float | None = Field(default=None, gt=0)
    min_requests: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _one_limit(self) -> CostGuard:
        if self.max_usd is None and self.max_ratio_to_legacy is None:
            raise ValueError("give max_usd, max_ratio_to_legacy or both")
        return self


class Guardrails(Section):
    divergence: DivergenceGuard | None = DivergenceGuard()
    error_rate: RateGuard | None = RateGuard(max=0.05)
    fallback_rate: RateGuard | None = RateGuard(max=0.1)
    latency_p95: LatencyGuard | None = None
    cost_per_request: CostGuard | None = None

    def merged(self, override: Guardrails | None) -> Guardrails:
        """These guardrails with the ones the override names replaced (or switched off)."""
        if override is None:
            return self
        return self.model_copy(update={name: getattr(override, name)
                                       for name in override.model_fields_set})


class Step(Section):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    shadow_percent: Percent = 0.0
    divert_percent: Percent = 0.0
    min_duration_seconds: float = Field(ge=0, allow_inf_nan=False)
    min_compared: int = Field(ge=1)
    guardrails: Guardrails | None = None

    @model_validator(mode="after")
    def _moves_traffic(self) -> Step:
        if self.shadow_percent == 0 and self.divert_percent == 0:
            raise ValueError("a step must shadow or divert something")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.divert_percent:
            return f"divert {self.divert_percent:g}% (shadow {self.shadow_percent:g}%)"
        return f"shadow {self.shadow_percent:g}%"


class RampPolicy(Section):
    description: str = ""
    schema_version: Literal[1] = Field(default=1, alias="schema")
    route: RoutePrefix | None = None
    measure_routes: tuple[RoutePrefix, ...] = ()
    evaluation_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    lock_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)
    noise_window_seconds: float = Field(default=86_400.0, gt=0, le=90 * 86_400)
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    on_rollback: Literal["kill", "zero"] = "kill"
    guardrails: Guardrails = Guardrails()
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("steps")
    @classmethod
    def _only_up(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        for index in range(1, len(steps)):
            before, step = steps[index - 1], steps[index]
            for field in ("shadow_percent", "divert_percent"):
                if getattr(step, field) < getattr(before, field):
                    raise ValueError(
                        f"[{index}].{field} is {getattr(step, field):g}, below the previous "
                        f"step's {getattr(before, field):g}: a ramp only adds traffic")
        labels = [step.label for step in steps]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"two steps are called {label!r}: give them distinct names")
        return steps

    @model_validator(mode="after")
    def _consistent(self) -> RampPolicy:
        if self.route is None and not self.measure_routes:
            raise ValueError("a global ramp (route null) needs measure_routes, "
                             "e.g. [\"/openai\"]")
        if self.lock_ttl_seconds <= 2 * self.evaluation_interval_seconds:
            raise ValueError("lock_ttl_seconds must exceed twice evaluation_interval_seconds "
                             "(the lock is renewed once per evaluation)")
        return self

    @property
    def routes(self) -> tuple[str, ...]:
        """The routes whose measurements gate the ramp."""
        if self.measure_routes:
            return self.measure_routes
        return (self.route,) if self.route else ()

    @property
    def scope(self) -> str:
        return self.route or "all routes"

    def guardrails_for(self, index: int) -> Guardrails:
        return self.guardrails.merged(self.steps[index].guardrails)

    def to_dict(self) -> dict[str, Any]:
        """JSON that parses back to an equal policy (stored with the ramp state). A step's
        guardrail override keeps only the names it set: the others inherit."""
        data = self.model_dump(mode="json", by_alias=True)
        for step, dumped in zip(self.steps, data["steps"], strict=True):
            if step.guardrails is not None:
                dumped["guardrails"] = step.guardrails.model_dump(mode="json",
                                                                  exclude_unset=True)
        return data


def parse_policy(data: Mapping[str, Any], source: str = "<ramp policy>") -> RampPolicy:
    return validated(RampPolicy, data, source)


def load_policy(path: Path) -> RampPolicy:
    return parse_policy(read_json_file(path), str(path))


def is_ramp_policy(data: Mapping[str, Any]) -> bool:
    """Whether a policy file is a ramp schedule (the meta-test loads every one)."""
    return "steps" in data
