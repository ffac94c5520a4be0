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
  (unpriced calls are counted, never guessed); per day = USD / observed days, where
  the observed window runs from the first bucket with data (or `since`) to `until`,
  and is at least one bucket long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from proxy.comparison.compare import Label
from proxy.comparison.noise import Excess, Proportion, excess_divergence
from proxy.report.entry import ROLES, Role, bin_centre_ms, label_counts
from proxy.report.judgements import JudgeSummary, judge_summary

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
        return _rate(self.labels["minor"] + self.labels["major"], self.compared)

    @property
    def noise_floor(self) -> float | None:
        return _rate(self.noise_divergent, self.noise_samples)


@dataclass(frozen=True, slots=True)
class RouteReport:
    summary: RouteSummary
    timeline: tuple[TimelinePoint, ...]
    latency_histogram: dict[int, int]


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: float
    since: float
    until: float
    bucket_seconds: int
    routes: tuple[RouteReport, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at, "since": self.since, "until": self.until,
            "bucket_seconds": self.bucket_seconds,
            "routes": [{**r.summary.as_dict(),
                        "timeline": [_point_dict(p) for p in r.timeline],
                        "latency_histogram_ms": {str(bin_centre_ms(k)): v for k, v
                                                 in sorted(r.latency_histogram.items())}}
                       for r in self.routes],
        }


def _point_dict(point: TimelinePoint) -> dict[str, Any]:
    return {**asdict(point), "divergence_rate": point.divergence_rate,
            "noise_floor": point.noise_floor}


def _rate(hits: float, total: float) -> float | None:
    return hits / total if total else None


def merge(buckets: Iterable[Bucket]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bucket in buckets:
        for name, value in bucket.fields.items():
            total[name] = total.get(name, 0.0) + value
    return total


def latency_histogram(fields: Mapping[str, float]) -> dict[int, int]:
    hist: dict[int, int] = {}
    for name, value in fields.items():
        if name.startswith("lat:") and name != "lat:count":
            try:
                hist[int(name[4:])] = int(value)
            except ValueError:
                continue
    return hist


def quantile(hist: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram, as its bin's centre, in ms."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank, running = q * total, 0
    for index in sorted(hist, key=bin_centre_ms):
        running += hist[index]
        if running >= rank:
            return round(bin_centre_ms(index), 3)
    return round(bin_centre_ms(max(hist, key=bin_centre_ms)), 3)


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
        divergence_rate=_rate(divergent, compared), major_rate=_rate(labels["major"], compared),
        mean_score=round(get("score_sum", 0.0) / compared, 6) if compared else None,
        truncated=int(get("truncated", 0)), noise_samples=noise_n, noise_labels=noise_labels,
        noise_floor=_rate(noise_divergent, noise_n),
        noise_major_rate=_rate(noise_labels["major"], noise_n),
        excess=excess_divergence(Proportion(divergent, compared),
                                 Proportion(noise_divergent, noise_n)),
        excess_major=excess_divergence(Proportion(labels["major"], compared),
                                       Proportion(noise_labels["major"], noise_n)),
        orchestrator_requests=orch, orchestrator_errors=int(get("orch:failed", 0)),
        orchestrator_low_confidence=int(get("orch:low_confidence", 0)),
        error_rate=_rate(get("orch:failed", 0), orch),
        divert_requests=diverts, divert_fallbacks=int(get("divert:fallbacks", 0)),
        fallback_rate=_rate(get("divert:fallbacks", 0), diverts),
        latency_samples=sum(hist.values()), latency_delta_p50_ms=quantile(hist, 0.5),
        latency_delta_p95_ms=quantile(hist, 0.95), cost=_costs(fields, days),
        models=_models(fields), top=_top(buckets, top), judge=judge_summary(fields),
        shadow_skipped={name[5:]: int(value) for name, value in sorted(fields.items())
                        if name.startswith("skip:")},
    )


def timeline(buckets: Sequence[Bucket]) -> tuple[TimelinePoint, ...]:
    points = []
    for bucket in sorted(buckets, key=lambda b: b.start):
        if not bucket.fields:
            continue
        fields = bucket.fields
        noise = label_counts(fields, "noise:")
        points.append(TimelinePoint(
            start=bucket.start, compared=int(fields.get("compared", 0)),
            labels=label_counts(fields, "label:"), noise_samples=int(fields.get("noise", 0)),
            noise_divergent=noise["minor"] + noise["major"],
            cost_usd={role: round(fields.get(f"cost:{role}:usd", 0.0), 9) for role in ROLES},
        ))
    return tuple(points)


def route_report(route: str, buckets: Sequence[Bucket], *, since: float, until: float,
                 bucket_seconds: int, top: int = 20) -> RouteReport:
    summary = summarise(route, buckets, since=since, until=until,
                        bucket_seconds=bucket_seconds, top=top)
    return RouteReport(summary, timeline(buckets), latency_histogram(merge(buckets)))
