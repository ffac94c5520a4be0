"""Guardrail checks: is a measured number clearly within its limit, clearly beyond it, or
not yet known?

Layer: pure core. Each check gives a verdict:

- `insufficient`: fewer samples than the guardrail's minimum: nothing is concluded;
- `breach`: the whole confidence interval lies above the limit: the evidence is clear,
  the ramp rolls back;
- `pass`: the whole interval lies at or below the limit: the ramp may promote;
- `inconclusive`: the interval straddles the limit: hold and collect more data;
- `not_applicable`: the guardrail does not apply to this step (fallbacks when nothing
  is diverted).

Intervals (two-sided, at the policy's `confidence`, 95 % by default):

- divergence above the noise floor: Newcombe's interval for p_compared - p_noise
  (`proxy.comparison.noise.excess_divergence`), so legacy's own randomness is not
  blamed on the orchestrator, and small samples give wide intervals rather than false
  alarms. The same for `major` alone when `max_excess_major` is set;
- error and fallback rates: the Wilson score interval of the proportion;
- latency delta p95: the distribution-free interval of a quantile from order statistics
  (ranks n·q ± z·sqrt(n·q·(1-q)) of the latency histogram), at the histogram's +-9 %
  resolution;
- cost per request: a point estimate (the report keeps sums, not variances): once the
  minimum of requests is met, above the limit is a breach, else a pass. Calls that could
  not be priced are not in the sum; when none was priced the check is `insufficient`.

The intervals are recomputed on every evaluation over growing data, so a true value
just under a limit may eventually be flagged: leave a margin between the limit and the
value you expect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from proxy.comparison.noise import Proportion, excess_divergence
from proxy.ramp.measurement import RouteMeasurement
from proxy.ramp.schedule import CostGuard, DivergenceGuard, Guardrails, LatencyGuard, RateGuard
from proxy.report.aggregate import quantile
from proxy.report.entry import bin_centre_ms

Verdict = Literal["pass", "breach", "inconclusive", "insufficient", "not_applicable"]


@dataclass(frozen=True, slots=True)
class Check:
    guardrail: str
    route: str
    verdict: Verdict
    detail: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    limit: float | None = None
    samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        return f"{self.route} {self.guardrail}: {self.detail}"


def z_for(confidence: float) -> float:
    """The two-sided normal quantile for a confidence level (0.95 -> 1.96)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def interval_verdict(low: float, high: float, limit: float) -> Verdict:
    if low > limit:
        return "breach"
    if high <= limit:
        return "pass"
    return "inconclusive"


def run_checks(guardrails: Guardrails, measured: RouteMeasurement, *, diverting: bool,
               z: float) -> tuple[Check, ...]:
    """Every enabled guardrail of a step, for one route."""
    checks: list[Check] = []
    route = measured.route
    if guardrails.divergence is not None:
        checks += check_divergence(route, measured, guardrails.divergence, z)
    if guardrails.error_rate is not None:
        checks.append(check_rate("error_rate", "orchestrator errors", route,
                                 Proportion(measured.orchestrator_errors,
                                            measured.orchestrator_requests),
                                 guardrails.error_rate, z))
    if guardrails.fallback_rate is not None:
        checks.append(check_fallback(route, measured, guardrails.fallback_rate,
                                     diverting=diverting, z=z))
    if guardrails.latency_p95 is not None:
        checks.append(check_latency(route, measured.latency_histogram,
                                    guardrails.latency_p95, z))
    if guardrails.cost_per_request is not None:
        checks += check_cost(route, measured, guardrails.cost_per_request)
    return tuple(checks)


def check_divergence(route: str, measured: RouteMeasurement, guard: DivergenceGuard,
                     z: float) -> list[Check]:
    checks = [_excess("divergence", "minor+major", route,
                      Proportion(measured.divergent, measured.compared),
                      Proportion(measured.noise_divergent, measured.noise_samples),
                      guard.max_excess, guard.min_samples, z)]
    if guard.max_excess_major is not None:
        checks.append(_excess("divergence_major", "major", route,
                              Proportion(measured.major, measured.compared),
                              Proportion(measured.noise_major, measured.noise_samples),
                              guard.max_excess_major, guard.min_samples, z))
    return checks


def _excess(name: str, what: str, route: str, compared: Proportion, noise: Proportion,
            limit: float, minimum: int, z: float) -> Check:
    counts = f"{compared.total} compared, {noise.total} noise samples"
    excess = excess_divergence(compared, noise, z)
    if (compared.total < minimum or noise.total < minimum or excess.value is None
            or excess.low is None or excess.high is None):
        return Check(name, route, "insufficient", f"{counts}; needs {minimum} of each",
                     limit=limit, samples=compared.total)
    verdict = interval_verdict(excess.low, excess.high, limit)
    detail = (f"{what} {_pct(compared.rate)} vs noise floor {_pct(noise.rate)}: excess "
              f"{excess.value:+.3f} (CI {excess.low:+.3f}..{excess.high:+.3f}), limit "
              f"{limit:.3f} ({counts})")
    return Check(name, route, verdict, detail, excess.value, excess.low, excess.high, limit,
                 compared.total)


def check_rate(name: str, what: str, route: str, rate: Proportion, guard: RateGuard,
               z: float) -> Check:
    if rate.total < guard.min_requests:
        return Check(name, route, "insufficient",
                     f"{what}: {rate.total} requests, needs {guard.min_requests}",
                     limit=guard.max, samples=rate.total)
    low, high = rate.wilson(z)
    detail = (f"{what} {rate.hits}/{rate.total} = {_pct(rate.rate)} "
              f"(CI {_pct(low)}..{_pct(high)}), limit {_pct(guard.max)}")
    return Check(name, route, interval_verdict(low, high, guard.max), detail, rate.rate,
                 low, high, guard.max, rate.total)


def check_fallback(route: str, measured: RouteMeasurement, guard: RateGuard, *,
                   diverting: bool, z: float) -> Check:
    if not diverting:
        return Check("fallback_rate", route, "not_applicable", "this step diverts nothing",
                     limit=guard.max)
    return check_rate("fallback_rate", "divert fallbacks", route,
                      Proportion(measured.divert_fallbacks, measured.divert_requests),
                      guard, z)


def check_latency(route: str, histogram: Mapping[int, int], guard: LatencyGuard,
                  z: float) -> Check:
    n = sum(histogram.values())
    limit = guard.max_delta_ms
    if n < guard.min_samples:
        return Check("latency_p95", route, "insufficient",
                     f"{n} latency samples, needs {guard.min_samples}", limit=limit, samples=n)
    point = quantile(histogram, 0.95)
    low, high = quantile_interval(histogram, 0.95, z)
    detail = (f"latency delta p95 {point:+.0f} ms (CI {low:+.0f}..{high:+.0f} ms), "
              f"limit {limit:+.0f} ms ({n} samples)")
    return Check("latency_p95", route, interval_verdict(low, high, limit), detail, point, low,
                 high, limit, n)


def quantile_interval(histogram: Mapping[int, int], q: float, z: float) -> tuple[float, float]:
    """Order-statistic confidence bounds of the q-quantile of a latency histogram (ms)."""
    n = sum(histogram.values())
    spread = z * math.sqrt(n * q * (1 - q))
    low_rank = max(1, math.floor(n * q - spread))
    high_rank = min(n, math.ceil(n * q + spread))
    return _value_at(histogram, low_rank), _value_at(histogram, high_rank)


def _value_at(histogram: Mapping[int, int], rank: int) -> float:
    """The bin centre of the rank-th smallest sample (1-based)."""
    running = 0
    for index in sorted(histogram, key=bin_centre_ms):
        running += histogram[index]
        if running >= rank:
            return round(bin_centre_ms(index), 3)
    return round(bin_centre_ms(max(histogram, key=bin_centre_ms)), 3)


def check_cost(route: str, measured: RouteMeasurement, guard: CostGuard) -> list[Check]:
    requests = measured.orchestrator_cost_requests
    priced = measured.orchestrator_calls - measured.orchestrator_unpriced
    if requests < guard.min_requests or priced <= 0:
        why = (f"{requests} orchestrator requests with a cost, needs {guard.min_requests}"
               if requests < guard.min_requests else "no orchestrator call could be priced")
        return [Check("cost_per_request", route, "insufficient", why,
                      limit=guard.max_usd or guard.max_ratio_to_legacy, samples=requests)]
    per_request = measured.orchestrator_usd / requests
    unpriced = (f", {measured.orchestrator_unpriced} calls unpriced (not counted)"
                if measured.orchestrator_unpriced else "")
    checks = []
    if guard.max_usd is not None:
        verdict: Verdict = "breach" if per_request > guard.max_usd else "pass"
        checks.append(Check("cost_per_request", route, verdict,
                            f"orchestrator ${per_request:.6f}/request, limit "
                            f"${guard.max_usd:.6f} ({requests} requests{unpriced})",
                            per_request, per_request, per_request, guard.max_usd, requests))
    if guard.max_ratio_to_legacy is not None:
        checks.append(_cost_ratio(route, measured, per_request, guard.max_ratio_to_legacy,
                                  guard.min_requests))
    return checks


def _cost_ratio(route: str, measured: RouteMeasurement, per_request: float, limit: float,
                minimum: int) -> Check:
    legacy_requests = measured.legacy_cost_requests
    if legacy_requests < minimum or measured.legacy_usd <= 0:
        return Check("cost_ratio", route, "insufficient",
                     f"legacy cost unknown ({legacy_requests} priced legacy requests, needs "
                     f"{minimum}; add legacy prices or drop max_ratio_to_legacy)",
                     limit=limit, samples=legacy_requests)
    ratio = per_request / (measured.legacy_usd / legacy_requests)
    verdict: Verdict = "breach" if ratio > limit else "pass"
    return Check("cost_ratio", route, verdict,
                 f"orchestrator/legacy cost per request {ratio:.2f}x, limit {limit:.2f}x",
                 ratio, ratio, ratio, limit, measured.orchestrator_cost_requests)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
