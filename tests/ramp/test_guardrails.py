"""Guardrail statistics, by table: small samples are insufficient, clear evidence
breaches, a straddling interval is inconclusive, and legacy's own noise is not blamed on
the orchestrator."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.comparison import Proportion
from proxy.ramp.guardrails import (
    check_cost,
    check_divergence,
    check_fallback,
    check_latency,
    check_rate,
    quantile_interval,
    run_checks,
    z_for,
)
from proxy.ramp.measurement import RouteMeasurement
from proxy.ramp.schedule import CostGuard, DivergenceGuard, Guardrails, LatencyGuard, RateGuard
from proxy.report.entry import latency_bin

Z = z_for(0.95)


def test_z_for_the_usual_levels() -> None:
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-5)
    assert z_for(0.99) == pytest.approx(2.5758, abs=1e-4)


@pytest.mark.parametrize(("hits", "total", "verdict"), [
    (0, 0, "insufficient"),
    (10, 10, "insufficient"),      # 100 % failures, but fewer than min_requests
    (0, 40, "pass"),               # Wilson upper 8.8 % <= 20 %
    (6, 40, "inconclusive"),       # 15 %, interval 7.1 %..29.0 % straddles 20 %
    (10, 40, "inconclusive"),
    (20, 40, "breach"),            # 50 %, lower bound 35 % > 20 %
    (30, 30, "breach"),
    (30, 300, "pass"),             # 10 %, upper 14 %
])
def test_rates(hits: int, total: int, verdict: str) -> None:
    check = check_rate("error_rate", "orchestrator errors", "/r", Proportion(hits, total),
                       RateGuard(max=0.2, min_requests=30), Z)
    assert check.verdict == verdict
    if verdict != "insufficient":
        assert check.low is not None and check.high is not None
        assert check.low - 1e-12 <= (check.value or 0) <= check.high
        assert f"{hits}/{total}" in check.detail and "limit 20.0%" in check.detail


DIVERGENCE = DivergenceGuard(max_excess=0.2, max_excess_major=0.1, min_samples=30)


@pytest.mark.parametrize(("m", "verdicts"), [
    # no noise samples: nothing concluded, even from a terrible orchestrator
    (dict(compared=40, divergent=40, major=40), ("insufficient", "insufficient")),
    (dict(compared=10, divergent=10, major=10, noise_samples=40), ("insufficient",) * 2),
    (dict(compared=40, noise_samples=40), ("pass", "pass")),
    (dict(compared=40, divergent=40, major=40, noise_samples=40), ("breach", "breach")),
    (dict(compared=40, divergent=10, noise_samples=40), ("inconclusive", "pass")),
    # legacy disagrees with itself 40 % of the time and the orchestrator as often:
    # that is noise, not a regression
    (dict(compared=120, divergent=48, noise_samples=120, noise_divergent=48), ("pass", "pass")),
    # minor differences within the tolerance, but major ones clearly above it
    (dict(compared=200, divergent=60, major=60, noise_samples=200, noise_divergent=30),
     ("inconclusive", "breach")),
])
def test_divergence_against_the_noise_floor(m: dict[str, Any],
                                            verdicts: tuple[str, str]) -> None:
    checks = check_divergence("/r", RouteMeasurement("/r", **m), DIVERGENCE, Z)
    assert [c.guardrail for c in checks] == ["divergence", "divergence_major"]
    assert tuple(c.verdict for c in checks) == verdicts


def test_divergence_detail_carries_the_numbers() -> None:
    (check,) = check_divergence("/r", RouteMeasurement("/r", compared=40, divergent=40,
                                                       noise_samples=40),
                                DivergenceGuard(max_excess=0.2), Z)
    assert check.verdict == "breach" and check.value == 1.0 and check.limit == 0.2
    assert "100.0% vs noise floor 0.0%" in check.detail and "40 compared" in check.detail


def hist(*groups: tuple[int, float]) -> dict[int, int]:
    out: dict[int, int] = {}
    for count, ms in groups:
        out[latency_bin(ms)] = out.get(latency_bin(ms), 0) + count
    return out


@pytest.mark.parametrize(("histogram", "verdict"), [
    (hist((20, 200)), "insufficient"),
    (hist((40, 200)), "pass"),
    (hist((40, 10_000)), "breach"),
    (hist((40, -300)), "pass"),                     # the orchestrator is faster
    # the point p95 is 10 s, but 4 slow answers out of 40 do not prove it
    (hist((36, 100), (4, 10_000)), "inconclusive"),
    (hist((200, 100), (4, 10_000)), "pass"),
    (hist((100, 100), (100, 5_000)), "breach"),
])
def test_latency_p95(histogram: dict[int, int], verdict: str) -> None:
    check = check_latency("/r", histogram, LatencyGuard(max_delta_ms=2000, min_samples=30), Z)
    assert check.verdict == verdict


def test_quantile_interval_brackets_the_point() -> None:
    histogram = hist((10, 100), (10, 200), (10, 400), (10, 800))
    low, high = quantile_interval(histogram, 0.95, Z)
    assert low == pytest.approx(800, rel=0.1) and high == pytest.approx(800, rel=0.1)
    low, high = quantile_interval(hist((50, 100), (50, 1000)), 0.5, Z)
    assert low == pytest.approx(100, rel=0.1) and high == pytest.approx(1000, rel=0.1)


@pytest.mark.parametrize(("fields", "guard", "verdicts"), [
    (dict(orchestrator_usd=0.16, orchestrator_cost_requests=40, orchestrator_calls=40),
     CostGuard(max_usd=0.01), ["pass"]),
    (dict(orchestrator_usd=0.8, orchestrator_cost_requests=40, orchestrator_calls=40),
     CostGuard(max_usd=0.01), ["breach"]),
    (dict(orchestrator_usd=0.1, orchestrator_cost_requests=10, orchestrator_calls=10),
     CostGuard(max_usd=0.01), ["insufficient"]),
    (dict(orchestrator_cost_requests=40, orchestrator_calls=40, orchestrator_unpriced=40),
     CostGuard(max_usd=0.01), ["insufficient"]),
    (dict(orchestrator_usd=0.16, orchestrator_cost_requests=40, orchestrator_calls=40,
          legacy_usd=0.04, legacy_cost_requests=40),
     CostGuard(max_usd=0.01, max_ratio_to_legacy=3), ["pass", "breach"]),
    (dict(orchestrator_usd=0.08, orchestrator_cost_requests=40, orchestrator_calls=40,
          legacy_usd=0.04, legacy_cost_requests=40),
     CostGuard(max_ratio_to_legacy=3), ["pass"]),
    (dict(orchestrator_usd=0.08, orchestrator_cost_requests=40, orchestrator_calls=40),
     CostGuard(max_ratio_to_legacy=3), ["insufficient"]),
])
def test_cost_per_request(fields: dict[str, Any], guard: CostGuard,
                          verdicts: list[str]) -> None:
    checks = check_cost("/r", RouteMeasurement("/r", **fields), guard)
    assert [c.verdict for c in checks] == verdicts


def test_unpriced_calls_are_named() -> None:
    (check,) = check_cost("/r", RouteMeasurement(
        "/r", orchestrator_usd=0.08, orchestrator_cost_requests=40, orchestrator_calls=50,
        orchestrator_unpriced=10), CostGuard(max_usd=0.01))
    assert check.verdict == "pass" and "10 calls unpriced" in check.detail


def test_fallbacks_only_count_when_the_step_diverts() -> None:
    m = RouteMeasurement("/r", divert_requests=40, divert_fallbacks=40)
    guard = RateGuard(max=0.1, min_requests=30)
    assert check_fallback("/r", m, guard, diverting=False, z=Z).verdict == "not_applicable"
    assert check_fallback("/r", m, guard, diverting=True, z=Z).verdict == "breach"


def test_run_checks_skips_switched_off_guardrails() -> None:
    guardrails = Guardrails(divergence=None, error_rate=RateGuard(max=0.1), fallback_rate=None)
    checks = run_checks(guardrails, RouteMeasurement("/r"), diverting=True, z=Z)
    assert [c.guardrail for c in checks] == ["error_rate"]
    everything = Guardrails(latency_p95=LatencyGuard(max_delta_ms=1),
                            cost_per_request=CostGuard(max_usd=1, max_ratio_to_legacy=2))
    names = [c.guardrail for c in run_checks(everything, RouteMeasurement("/r"),
                                             diverting=False, z=Z)]
    # with no data the cost is one insufficient check, whatever its limits
    assert names == ["divergence", "error_rate", "fallback_rate", "latency_p95",
                     "cost_per_request"]
