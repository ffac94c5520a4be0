"""What the ramp controller measures for one route in the current step, from the report's
time buckets.

Layer: pure core. The report keeps additive counters per route and time bucket (one
hour by default), so a step that started mid-bucket would otherwise count the previous
step's comparisons too, and a step could be promoted on its predecessor's data. When a
step starts, the ramp keeps a copy of each measured route's counters in the current
bucket (its `Baseline`); the step's numbers are then the buckets since the step began,
the first one minus that copy. A bucket that started before the step and has no
matching baseline is dropped (never guessed): fewer data, so a longer hold, never an
early promotion.

The noise floor (legacy against itself) does not depend on the ramp, so it is read over
a longer trailing window (`noise_window_seconds`) than the step: its interval gets
tighter without waiting for every step to collect its own resamples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from proxy.report.aggregate import Bucket, latency_histogram, merge, summarise


class Baseline(BaseModel):
    """A route's counters in the bucket that was current when a step started."""

    model_config = ConfigDict(frozen=True)

    start: float
    fields: dict[str, float]


@dataclass(frozen=True, slots=True)
class RouteMeasurement:
    """One route's numbers in the current step (noise: over the noise window)."""

    route: str
    compared: int = 0
    divergent: int = 0
    major: int = 0
    noise_samples: int = 0
    noise_divergent: int = 0
    noise_major: int = 0
    orchestrator_requests: int = 0
    orchestrator_errors: int = 0
    divert_requests: int = 0
    divert_fallbacks: int = 0
    latency: tuple[tuple[int, int], ...] = ()  # (latency bin, count), see report.entry
    orchestrator_usd: float = 0.0
    orchestrator_cost_requests: int = 0
    orchestrator_calls: int = 0
    orchestrator_unpriced: int = 0
    legacy_usd: float = 0.0
    legacy_cost_requests: int = 0

    @property
    def latency_histogram(self) -> dict[int, int]:
        return dict(self.latency)


def since_baseline(buckets: Iterable[Bucket], since: float,
                   baseline: Baseline | None) -> list[Bucket]:
    """The buckets' counters accumulated from `since` on (see the module docstring)."""
    out = []
    for bucket in buckets:
        if bucket.start >= since:
            out.append(bucket)
        elif baseline is not None and bucket.start == baseline.start:
            out.append(Bucket(bucket.route, bucket.start, _minus(bucket.fields,
                                                                 baseline.fields)))
    return out


def _minus(fields: Mapping[str, float], base: Mapping[str, float]) -> dict[str, float]:
    # Counters only grow; a negative difference means the bucket expired and came back.
    return {name: max(0.0, value - base.get(name, 0.0)) for name, value in fields.items()}


def measure(route: str, step: Sequence[Bucket], noise: Sequence[Bucket], *,
            since: float, until: float, bucket_seconds: int) -> RouteMeasurement:
    """A route's measurement from its step buckets (already `since_baseline`) and its
    noise-window buckets."""
    summary = summarise(route, step, since=since, until=until, bucket_seconds=bucket_seconds,
                        top=0)
    noise_summary = summarise(route, noise, since=since, until=until,
                              bucket_seconds=bucket_seconds, top=0)
    noise_labels = noise_summary.noise_labels
    labels = summary.labels
    orchestrator = summary.cost.get("orchestrator")
    legacy = summary.cost.get("legacy")
    return RouteMeasurement(
        route=route, compared=summary.compared,
        divergent=labels["minor"] + labels["major"], major=labels["major"],
        noise_samples=noise_summary.noise_samples,
        noise_divergent=noise_labels["minor"] + noise_labels["major"],
        noise_major=noise_labels["major"],
        orchestrator_requests=summary.orchestrator_requests,
        orchestrator_errors=summary.orchestrator_errors,
        divert_requests=summary.divert_requests, divert_fallbacks=summary.divert_fallbacks,
        latency=tuple(sorted(latency_histogram(merge(step)).items())),
        orchestrator_usd=orchestrator.usd if orchestrator else 0.0,
        orchestrator_cost_requests=orchestrator.requests if orchestrator else 0,
        orchestrator_calls=orchestrator.calls if orchestrator else 0,
        orchestrator_unpriced=orchestrator.unpriced if orchestrator else 0,
        legacy_usd=legacy.usd if legacy else 0.0,
        legacy_cost_requests=legacy.requests if legacy else 0,
    )
