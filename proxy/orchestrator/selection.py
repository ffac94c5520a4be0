"""Which models answer a request: Thompson sampling over learned records, cold-started
from the configured response time and price, kept within the cost limit.

Layer: pure core. For each enabled model and the request's task type:

    score = θ_correct · θ_available
            − latency_weight · L / (L + latency_reference_seconds)
            − cost_weight · min(1, estimate / cost_limit)

θ_correct and θ_available are *draws* from the model's Beta posteriors
(`proxy.orchestrator.learned`): a model with little evidence has a wide posterior and is
sometimes drawn high, so it keeps being tried (exploration), while a model with a long good
record is drawn high most of the time (exploitation). L is the expected latency: the
configured `avg_response_time` counted as two pseudo-observations, blended with measured
latencies as they come in. Before anything is learned both posteriors are the priors,
so the latency and price terms order the models (cold start).

Models are taken best score first; a model whose estimated cost no longer fits the
remaining budget is skipped, never started. With `enable_model_selection` off, the order
is the configured one (the legacy system's static choice). The random source is passed
in, so a seed makes selection reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from proxy.config.orchestrator import SelectionSettings
from proxy.orchestrator.cost import Estimate
from proxy.orchestrator.learned import (
    Evidence,
    ModelRecord,
    availability,
    correctness,
    reliability,
)
from proxy.orchestrator.registry import AIModel

_PRIOR_LATENCY_WEIGHT = 2.0


@dataclass(frozen=True)
class Candidate:
    model: AIModel
    score: float
    reliability: float
    expected_latency: float
    estimate: Estimate


def expected_latency(model: AIModel, record: ModelRecord) -> float:
    total = _PRIOR_LATENCY_WEIGHT * model.avg_response_time + record.latency_sum
    return total / (_PRIOR_LATENCY_WEIGHT + record.latency_count)


def rank(
    models: Sequence[AIModel],
    record_of: Callable[[str], ModelRecord],
    estimates: Mapping[str, Estimate],
    *,
    settings: SelectionSettings,
    cost_limit: float | None,
    rng: random.Random | None,
) -> list[Candidate]:
    """Every model with its score, best first. `rng=None` scores posterior means
    instead of draws (no exploration: for reports and explanations)."""
    evidence = Evidence.from_settings(settings)
    top_cost = max((estimates[m.name].usd for m in models), default=0.0)
    candidates = []
    for model in models:
        record = record_of(model.name)
        latency = expected_latency(model, record)
        estimate = estimates[model.name]
        theta = _draw(correctness(record, evidence), rng) * _draw(availability(record), rng)
        slowness = latency / (latency + settings.latency_reference_seconds)
        score = (theta - settings.latency_weight * slowness
                 - settings.cost_weight * _cost_share(estimate.usd, cost_limit, top_cost))
        candidates.append(Candidate(model, score, reliability(record, evidence), latency,
                                    estimate))
    candidates.sort(key=lambda c: (-c.score, c.model.name))
    return candidates


def static_order(models: Sequence[AIModel], record_of: Callable[[str], ModelRecord],
                 estimates: Mapping[str, Estimate], evidence: Evidence) -> list[Candidate]:
    """The configured order, unscored (model selection switched off)."""
    return [Candidate(model, 0.0, reliability(record_of(model.name), evidence),
                      expected_latency(model, record_of(model.name)), estimates[model.name])
            for model in models]


def plan(candidates: Sequence[Candidate], count: int, budget_left: float | None,
         exclude: frozenset[str] = frozenset()) -> list[Candidate]:
    """The first `count` candidates whose estimates fit the budget together."""
    chosen: list[Candidate] = []
    left = budget_left
    for candidate in candidates:
        if len(chosen) >= count:
            break
        if candidate.model.name in exclude:
            continue
        if left is not None and candidate.estimate.usd > left + 1e-12:
            continue
        chosen.append(candidate)
        if left is not None:
            left -= candidate.estimate.usd
    return chosen


def _draw(params: tuple[float, float], rng: random.Random | None) -> float:
    alpha, beta = params
    if rng is None:
        return alpha / (alpha + beta)
    return rng.betavariate(alpha, beta)


def _cost_share(usd: float, cost_limit: float | None, top_cost: float) -> float:
    if cost_limit:
        return min(1.0, usd / cost_limit)
    return usd / top_cost if top_cost > 0 else 0.0
