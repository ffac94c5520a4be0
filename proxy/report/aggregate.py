"""From the raw bucket counters of a time window to the numbers the report shows and the
ramp controller reads.

Layer: pure core. Buckets are merged by adding their counters (they come from every
replica and every bucket in the window). Derived numbers:

- divergence rate = (minor + major) / compared; noise floor = the same over the legacy
  resample pairs; excess divergence and its interval: `proxy.comparison.noise`;
- error rate = failed orchestrator answers / orchestrator requests (low-confidence
  answers are counted apart); fallback rate = divert fallbacks / divert requests;
- latency delta (orchestrator minus legacy) p50 / p95 from the signed log histogram
  (+-9 % resolution, see `entry.latency_bin`);
- the judge's verdicts against the rules' labels: `proxy.report.judgements`;
- cost per request by role = USD of that role / requests that had a call of that role
  (unpriced calls are counted, never guessed); per day is a projection, not a measure:
  USD / observed days, where the observed window (`projection_seconds`) runs from the
  first bucket with data (or `since`) to `until`, and is at least one bucket long;
- labels by reason: each label's count split by the comparison's reason;
- per orchestrator model (in-process pipeline): how often selection picked it, how
  often its answer was used, its outcomes, latency p50/p95 (log bins, as above), cost,
  and the labels of the compared answers it contributed to.

The timeline can be re-binned to a coarser step than the stored buckets (`timeline`,
`display_step`), so a chart of any window has a readable number of bars.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from proxy.comparison.comparator import Label
from proxy.comparison.noise import Excess, Proportion, excess_divergence
from proxy.report.entry import (
    ROLES,
    Role,
    bin_centre_ms,
    label_counts,
    latency_histogram,
    quantile,
)
from proxy.report.example import Example
from proxy.report.judgements import JudgeSummary, judge_summary
from proxy.report.lineup import OrchestratorModel, orchestrator_models, rate

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Bucket:
    """One route's counters for one time bucket, as read back from Redis."""

    route: str
    start: float
    fields: Mapping[str, float]
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class TopRequest:
    request_id: str
    score: float
    label: str
    bucket_start: float


@dataclass(frozen=True, slots=True)
class RoleCostSummary:
    """`per_day` is a projection: the USD of the window scaled to a day (see
    `RouteSummary.projection_seconds` for the window it projects from)."""

    usd: float
    calls: int
    unpriced: int
    requests: int
    per_request: float | None
    per_day: float | None


@dataclass(frozen=True, slots=True)
class RouteSummary:
    route: str
    since: float
    until: float
    compared: int
    labels: dict[Label, int]
    divergence_rate: float | None
    major_rate: float | None
    mean_score: float | None
    truncated: int
    noise_samples: int
    noise_labels: dict[Label, int]
    noise_floor: float | None
    noise_major_rate: float | None
    excess: Excess
    excess_major: Excess
    orchestrator_requests: int
    orchestrator_errors: int
    orchestrator_low_confidence: int
    error_rate: float | None
    divert_requests: int
    divert_fallbacks: int
    fallback_rate: float | None
    latency_samples: int
    latency_delta_p50_ms: float | None
    latency_delta_p95_ms: float | None
    cost: dict[Role, RoleCostSummary]
    models: dict[str, dict[str, int]] = field(default_factory=dict)
    top: tuple[TopRequest, ...] = ()
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    noise_reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    orchestrator_models: dict[str, OrchestratorModel] = field(default_factory=dict)
    projection_seconds: float = 0.0
    # Shadows that were due and did not run, by reason (overload, concurrency_full).
    shadow_skipped: dict[str, int] = field(default_factory=dict)
    judge: JudgeSummary | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["excess"] = self.excess.as_dict()
        data["excess_major"] = self.excess_major.as_dict()
        return data


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    start: float
    compared: int
    labels: dict[Label, int]
    noise_samples: int
    noise_divergent: int
    cost_usd: dict[Role, float]

    @property
    def divergence_rate(self) -> float | None:
        return rate(self.labels["minor"] + self.labels["major"], self.compared)

    @property
    def noise_floor(self) -> float | None:
        return rate(self.noise_divergent, self.noise_samples)


@dataclass(frozen=True, slots=True)
class RouteReport:
    summary: RouteSummary
    timeline: tuple[TimelinePoint, ...]
    latency_histogram: dict[int, int]
    examples: tuple[Example, ...] = ()
    timeline_seconds: int = 0  # the step of `timeline` (a multiple of the buckets')


@dataclass(frozen=True, slots=True)
class Report:
    """`since` .. `until` is the window asked for; `counted_since` .. `until` the one
    counted: buckets of `bucket_seconds` are counted whole, so the first bucket may
    start before `since` (by less than one bucket). `examples_kept` is the configured
    `comparison.keep_examples` (0: none are kept)."""

    generated_at: float
    since: float
    until: float
    bucket_seconds: int
    routes: tuple[RouteReport, ...]
    counted_since: float | None = None
    examples_kept: int = 0

    @property
    def counted_from(self) -> float:
        return self.since if self.counted_since is None else self.counted_since

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at, "since": self.since, "until": self.until,
            "counted_since": self.counted_from, "bucket_seconds": self.bucket_seconds,
            "examples_kept": self.examples_kept,
            "routes": [{**r.summary.as_dict(),
                        "timeline_seconds": r.timeline_seconds or self.bucket_seconds,
                        "timeline": [_point_dict(p) for p in r.timeline],
                        "latency_histogram_ms": {str(bin_centre_ms(k)): v for k, v
                                                 in sorted(r.latency_histogram.items())},
                        "examples": [example.as_dict() for example in r.examples]}
                       for r in self.routes],
        }


def _point_dict(point: TimelinePoint) -> dict[str, Any]:
    return {**asdict(point), "divergence_rate": point.divergence_rate,
            "noise_floor": point.noise_floor}


__all__ = ["Bucket", "OrchestratorModel", "Report", "RouteReport", "RouteSummary",
           "TimelinePoint", "TopRequest", "display_step", "latency_histogram", "merge",
           "quantile", "route_report", "summarise", "timeline"]


def merge(buckets: Iterable[Bucket]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bucket in buckets:
        for name, value in bucket.fields.items():
            total[name] = total.get(name, 0.0) + value
    return total


def _costs(fields: Mapping[str, float], days: float) -> dict[Role, RoleCostSummary]:
    out: dict[Role, RoleCostSummary] = {}
    for role in ROLES:
        calls = int(fields.get(f"cost:{role}:calls", 0))
        if not calls:
            continue
        usd = round(fields.get(f"cost:{role}:usd", 0.0), 9)
        requests = int(fields.get(f"cost:{role}:requests", 0))
        out[role] = RoleCostSummary(
            usd=usd, calls=calls, unpriced=int(fields.get(f"cost:{role}:unpriced", 0)),
            requests=requests, per_request=round(usd / requests, 9) if requests else None,
            per_day=round(usd / days, 9) if days > 0 else None)
    return out


def _models(fields: Mapping[str, float]) -> dict[str, dict[str, int]]:
    models: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        if name.startswith("m|"):
            _, model, what = name.split("|", 2)
            models.setdefault(model, {})[what] = int(value)
    return models


def reason_counts(fields: Mapping[str, float], prefix: str) -> dict[str, dict[str, int]]:
    """label -> reason -> count, from `{prefix}{label}:{reason}` counters."""
    out: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        if name.startswith(prefix) and value:
            label, _, reason = name[len(prefix):].partition(":")
            out.setdefault(label, {})[reason] = int(value)
    return {label: dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
            for label, counts in out.items()}


def _top(buckets: Sequence[Bucket], limit: int) -> tuple[TopRequest, ...]:
    rows = []
    for bucket in buckets:
        for member, score in bucket.top:
            label, _, request_id = member.partition("|")
            rows.append(TopRequest(request_id, round(score, 6), label, bucket.start))
    rows.sort(key=lambda row: (-row.score, -row.bucket_start, row.request_id))
    return tuple(rows[:limit])


def summarise(route: str, buckets: Sequence[Bucket], *, since: float, until: float,
              bucket_seconds: int, top: int = 20) -> RouteSummary:
    fields = merge(buckets)
    get = fields.get
    labels = label_counts(fields, "label:")
    noise_labels = label_counts(fields, "noise:")
    compared, noise_n = int(get("compared", 0)), int(get("noise", 0))
    divergent = labels["minor"] + labels["major"]
    noise_divergent = noise_labels["minor"] + noise_labels["major"]
    hist = latency_histogram(fields)
    with_data = [b.start for b in buckets if b.fields]
    observed = until - max(since, min(with_data)) if with_data else 0.0
    days = max(observed, float(bucket_seconds)) / DAY
    orch = int(get("orch:requests", 0))
    diverts = int(get("divert:requests", 0))
    return RouteSummary(
        route=route, since=since, until=until, compared=compared, labels=labels,
        divergence_rate=rate(divergent, compared), major_rate=rate(labels["major"], compared),
        mean_score=round(get("score_sum", 0.0) / compared, 6) if compared else None,
        truncated=int(get("truncated", 0)), noise_samples=noise_n, noise_labels=noise_labels,
        noise_floor=rate(noise_divergent, noise_n),
        noise_major_rate=rate(noise_labels["major"], noise_n),
        excess=excess_divergence(Proportion(divergent, compared),
                                 Proportion(noise_divergent, noise_n)),
        excess_major=excess_divergence(Proportion(labels["major"], compared),
                                       Proportion(noise_labels["major"], noise_n)),
        orchestrator_requests=orch, orchestrator_errors=int(get("orch:failed", 0)),
        orchestrator_low_confidence=int(get("orch:low_confidence", 0)),
        error_rate=rate(get("orch:failed", 0), orch),
        divert_requests=diverts, divert_fallbacks=int(get("divert:fallbacks", 0)),
        fallback_rate=rate(get("divert:fallbacks", 0), diverts),
        latency_samples=sum(hist.values()), latency_delta_p50_ms=quantile(hist, 0.5),
        latency_delta_p95_ms=quantile(hist, 0.95), cost=_costs(fields, days),
        models=_models(fields), top=_top(buckets, top), judge=judge_summary(fields),
        reasons=reason_counts(fields, "reason:"),
        noise_reasons=reason_counts(fields, "noise_reason:"),
        orchestrator_models=orchestrator_models(fields, orch),
        projection_seconds=days * DAY,
        shadow_skipped={name[5:]: int(value) for name, value in sorted(fields.items())
                        if name.startswith("skip:")},
    )


# Steps a timeline is drawn in, and how many bars a chart should have at most.
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600,
         43_200, 86_400, 172_800, 604_800)
MAX_BARS = 60


def display_step(window_seconds: float, bucket_seconds: int) -> int:
    """The stored bucket when the window fits in `MAX_BARS` of them, else the smallest
    round step (a multiple of the bucket) that does: a one-minute window in 10 s buckets
    gives 6 bars, two hours of them 2 min bars, a week of hourly buckets 3 h bars."""
    if window_seconds / bucket_seconds <= MAX_BARS:
        return bucket_seconds
    for step in STEPS:
        if step > bucket_seconds and step % bucket_seconds == 0 \
                and window_seconds / step <= MAX_BARS:
            return step
    return bucket_seconds * math.ceil(window_seconds / bucket_seconds / MAX_BARS)


def timeline(buckets: Sequence[Bucket], step: int | None = None) -> tuple[TimelinePoint, ...]:
    """One point per `step` seconds with data (default: per stored bucket)."""
    groups: dict[float, list[Bucket]] = {}
    for bucket in buckets:
        if bucket.fields:
            start = bucket.start if not step else (bucket.start // step) * step
            groups.setdefault(start, []).append(bucket)
    points = []
    for start in sorted(groups):
        fields = merge(groups[start])
        noise = label_counts(fields, "noise:")
        points.append(TimelinePoint(
            start=start, compared=int(fields.get("compared", 0)),
            labels=label_counts(fields, "label:"), noise_samples=int(fields.get("noise", 0)),
            noise_divergent=noise["minor"] + noise["major"],
            cost_usd={role: round(fields.get(f"cost:{role}:usd", 0.0), 9) for role in ROLES},
        ))
    return tuple(points)


def route_report(route: str, buckets: Sequence[Bucket], *, since: float, until: float,
                 bucket_seconds: int, top: int = 20,
                 examples: Sequence[Example] = ()) -> RouteReport:
    summary = summarise(route, buckets, since=since, until=until,
                        bucket_seconds=bucket_seconds, top=top)
    step = display_step(until - since, bucket_seconds)
    return RouteReport(summary, timeline(buckets, step), latency_histogram(merge(buckets)),
                       tuple(examples), step)
