"""The report's rows per orchestrator model: how often selection picked each model, how
often its answer was used, its outcomes, latency, cost, and the labels of the compared
answers it contributed to.

Layer: pure core. Read from the `om|{model}|...` counters of a route's merged buckets
(see `proxy.report.entry`). Only the in-process pipeline's model calls are counted: an
external orchestrator's models are not visible to the proxy (its requests, errors and
cost are in the route's orchestrator totals).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.comparison.comparator import Label
from proxy.report.entry import label_counts, latency_histogram, quantile


@dataclass(frozen=True, slots=True)
class OrchestratorModel:
    """One orchestrator model's row: `selected` = calls (selection picked it), `used` =
    its answer was in the merged answer, `answers` = valid answers; errors and timeouts
    over the calls that ran to an end (cancelled ones, stopped early because the answers
    in hand sufficed, are not failures)."""

    model: str
    selected: int
    selected_share: float | None
    used: int
    answers: int
    invalid: int
    errors: int
    timeouts: int
    cancelled: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    usd: float
    unpriced: int
    cost_per_call: float | None
    compared: int
    labels: dict[Label, int]
    major_rate: float | None


def orchestrator_models(fields: Mapping[str, float],
                        requests: int) -> dict[str, OrchestratorModel]:
    raw: dict[str, dict[str, float]] = {}
    for name, value in fields.items():
        if name.startswith("om|"):
            _, model, what = name.split("|", 2)
            raw.setdefault(model, {})[what] = value
    return {model: _model_row(model, counts, requests) for model, counts in sorted(raw.items())}


def _model_row(model: str, counts: Mapping[str, float], requests: int) -> OrchestratorModel:
    get = counts.get
    selected, cancelled = int(get("calls", 0)), int(get("cancelled", 0))
    errors, timeouts = int(get("error", 0)), int(get("timeout", 0))
    hist = latency_histogram(counts)
    labels = label_counts(counts, "label:")
    compared = int(get("compared", 0))
    usd = round(get("usd", 0.0), 9)
    priced = selected - int(get("unpriced", 0))
    return OrchestratorModel(
        model=model, selected=selected, selected_share=rate(selected, requests),
        used=int(get("used", 0)), answers=int(get("valid", 0)),
        invalid=int(get("invalid", 0)), errors=errors, timeouts=timeouts,
        cancelled=cancelled, error_rate=rate(errors + timeouts, selected - cancelled),
        latency_p50_ms=quantile(hist, 0.5), latency_p95_ms=quantile(hist, 0.95), usd=usd,
        unpriced=int(get("unpriced", 0)),
        cost_per_call=round(usd / priced, 9) if priced > 0 else None, compared=compared,
        labels=labels, major_rate=rate(labels["major"], compared))


def rate(hits: float, total: float) -> float | None:
    return hits / total if total else None
