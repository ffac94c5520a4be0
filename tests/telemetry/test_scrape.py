"""`GET /metrics` on an admin app: Prometheus text (or OpenMetrics on request) with the
GenAI metrics and the conventions' bucket boundaries, served over a real socket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from proxy.config.telemetry import TelemetrySection
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.records import Comparison, FlagObservation, ModelCall
from proxy.telemetry.scrape import routes
from tests.fakes.servers import ThreadedServer


@pytest.fixture
def admin(build: Callable[..., Telemetry]) -> Iterator[tuple[Telemetry, str]]:
    telemetry = build()
    with ThreadedServer(Starlette(routes=routes(telemetry))) as server:
        yield telemetry, server.url


def record(telemetry: Telemetry) -> None:
    trace = telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions", "r")
    now = time.monotonic()
    telemetry.record_model_call(trace, ModelCall(
        role="legacy", operation="chat", provider="openai", request_model="gpt-4o",
        start=now, end=now + 0.3, stream=True, time_to_first_chunk=0.05, input_tokens=100,
        output_tokens=20, cost_usd=0.002, route="/openai"))
    telemetry.end_request(trace, 200, "shadow", decision_reason="shadow_band")
    telemetry.record_comparison(trace, Comparison(route="/openai", score=0.3, label="major",
                                                  above_noise=True))
    telemetry.count_shadow_skipped("pool_full", "/openai")
    telemetry.count_divert_fallback("low_confidence")
    telemetry.observe_flags(lambda: FlagObservation(version=7, state="ready",
                                                    age_seconds=0.2))


def test_metrics_in_prometheus_text_format(admin: tuple[Telemetry, str]) -> None:
    telemetry, url = admin
    record(telemetry)
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for line in (
        "# TYPE gen_ai_client_operation_duration_seconds histogram",
        "# TYPE gen_ai_client_token_usage histogram",
        "# TYPE gen_ai_client_operation_time_to_first_chunk_seconds histogram",
        "# TYPE llm_shadow_cost_usd_total counter",
        "# TYPE llm_shadow_decisions_total counter",
        "# TYPE llm_shadow_shadow_skipped_total counter",
        "# TYPE llm_shadow_divert_fallbacks_total counter",
        "# TYPE llm_shadow_comparisons_total counter",
        "# TYPE llm_shadow_divergence_score histogram",
        "# TYPE llm_shadow_flags_version gauge",
    ):
        assert line in text, line
    assert 'le="81.92"' in text and 'le="67108864"' in text
    assert 'gen_ai_token_type="input"' in text and 'gen_ai_token_type="output"' in text
    assert 'llm_shadow_shadow_skip_reason="pool_full"' in text
    assert 'llm_shadow_flags_state="ready"' in text
    assert 'service_name="llm-shadow"' in text  # target_info


def test_openmetrics_on_request(admin: tuple[Telemetry, str]) -> None:
    telemetry, url = admin
    record(telemetry)
    response = httpx.get(url + "/metrics",
                         headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_no_route_when_prometheus_is_off(build: Callable[..., Telemetry]) -> None:
    assert routes(build(TelemetrySection(prometheus=False))) == []


def test_failing_flag_callback_does_not_break_the_scrape(
        admin: tuple[Telemetry, str]) -> None:
    telemetry, url = admin

    def broken() -> FlagObservation:
        raise RuntimeError("redis gone")

    telemetry.observe_flags(broken)
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200
