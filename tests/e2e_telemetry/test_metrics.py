"""The proxy's metrics after real traffic: scraped from `GET /metrics` on the admin port
(Prometheus text, as most clusters collect them) and pushed over OTLP/HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.e2e_telemetry.stack import Stack, chat, default_behaviours
from tests.fakes.models import ModelBehaviour
from tests.fakes.otlp_receiver import ReceivedPoint
from tests.fakes.servers import wait_for

pytestmark = pytest.mark.integration

WORKFLOW = "invoke_workflow orchestrator"
# The conventions' bucket boundaries (v1.41 metrics tables).
DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92]
TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                16777216, 67108864]


@pytest.fixture(scope="module")
def traffic(running: Stack) -> Stack:
    """One of each: legacy (whole and streamed), shadow (compared), divert fallback (the
    models fail)."""
    stack = running
    stack.reset()
    legacy, _ = chat(stack.url("/openai"), "count me")
    streamed, _ = chat(stack.url("/openai"), "stream me", stream=True, include_usage=True)
    shadow, _ = chat(stack.url("/shadow/openai"), "compare me")
    stack.trace(legacy, expect=["role:legacy"])
    stack.trace(streamed, expect=["role:legacy"])
    stack.trace(shadow, expect=["role:legacy", "role:orchestrator", "comparison"])
    for model in stack.fleet:
        model.behaviour = ModelBehaviour(status=503)
    try:
        fallback, _ = chat(stack.url("/divert/openai"), "fall back")
        stack.trace(fallback, expect=[WORKFLOW, "role:legacy"])
    finally:
        for model in stack.fleet:
            model.behaviour = default_behaviours()[model.name]
    return stack


def samples(text: str, name: str) -> list[Sample]:
    """Every sample of the metric family `name` in a Prometheus text exposition."""
    found = [s for family in text_string_to_metric_families(text) if family.name == name
             for s in family.samples]
    assert found, f"no {name} in /metrics"
    return found


def matching(found: list[Sample], suffix: str = "", **labels: str) -> list[Sample]:
    return [s for s in found if s.name.endswith(suffix)
            and all(s.labels.get(k) == v for k, v in labels.items())]


def bounds(found: list[Sample]) -> list[float]:
    return sorted({float(s.labels["le"]) for s in found if s.name.endswith("_bucket")
                   and s.labels["le"] != "+Inf"})


# --- GET /metrics -----------------------------------------------------------------------


def test_scrape_has_the_genai_client_metrics(traffic: Stack) -> None:
    text = traffic.scrape()
    duration = samples(text, "gen_ai_client_operation_duration_seconds")
    legacy = matching(duration, "_count", gen_ai_operation_name="chat",
                      gen_ai_provider_name="openai", llm_shadow_role="legacy",
                      gen_ai_request_model="gpt-4o-mini")
    assert legacy and legacy[0].value >= 1
    assert matching(duration, "_count", llm_shadow_role="orchestrator",
                    gen_ai_provider_name="fake")
    assert bounds(duration) == DURATION_BOUNDS
    tokens = samples(text, "gen_ai_client_token_usage")
    for kind in ("input", "output"):
        assert matching(tokens, "_sum", gen_ai_token_type=kind, llm_shadow_role="legacy")
        assert matching(tokens, "_sum", gen_ai_token_type=kind, llm_shadow_role="orchestrator")
    assert bounds(tokens) == TOKEN_BOUNDS
    first_chunk = samples(text, "gen_ai_client_operation_time_to_first_chunk_seconds")
    assert matching(first_chunk, "_count", llm_shadow_role="legacy",
                    gen_ai_request_model="gpt-4o-mini")


def test_scrape_has_divergence_cost_and_skips(traffic: Stack) -> None:
    text = traffic.scrape()
    divergence = samples(text, "llm_shadow_divergence_score")
    assert matching(divergence, "_count", llm_shadow_route="/shadow/openai",
                    llm_shadow_divergence_label="identical")
    comparisons = samples(text, "llm_shadow_comparisons")
    assert matching(comparisons, "_total", llm_shadow_route="/shadow/openai")
    cost = samples(text, "llm_shadow_cost_usd")
    for role in ("legacy", "orchestrator"):
        priced = matching(cost, "_total", llm_shadow_role=role)
        assert priced and all(s.value > 0 for s in priced), role
    skipped = samples(text, "llm_shadow_shadow_skipped")
    assert matching(skipped, "_total", llm_shadow_shadow_skip_reason="sampled_out",
                    llm_shadow_route="/openai")
    fallbacks = samples(text, "llm_shadow_divert_fallbacks")
    # A low-cardinality code as the label, not the pipeline's message (which names the
    # models and their errors, and would make a new series for every combination).
    assert {s.labels["llm_shadow_fallback_reason"] for s in matching(
        fallbacks, "_total", llm_shadow_route="/divert/openai")} == {"failed"}
    version = samples(text, "llm_shadow_flags_version")
    assert matching(version, llm_shadow_flags_state="ready")[0].value == traffic.flag_version


# --- OTLP ---------------------------------------------------------------------------------


def otlp_points(stack: Stack, name: str,
                where: Callable[[ReceivedPoint], bool]) -> list[ReceivedPoint]:
    """The points of `name` in the latest OTLP export that has one satisfying `where`."""
    def found() -> list[ReceivedPoint] | None:
        metric = stack.receiver.metric(name)
        points = [p for p in metric.points if where(p)] if metric else []
        return points or None

    points: list[ReceivedPoint] = wait_for(found, timeout=15, message=f"OTLP {name}")
    return points


def role(value: str, **more: Any) -> Callable[[ReceivedPoint], bool]:
    def check(point: ReceivedPoint) -> bool:
        attrs = point.attributes
        return attrs.get("llm_shadow.role") == value and all(
            attrs.get(k) == v for k, v in more.items())
    return check


def test_otlp_has_the_same_metrics(traffic: Stack) -> None:
    duration = otlp_points(traffic, "gen_ai.client.operation.duration", role("legacy"))
    assert duration[0].count and duration[0].explicit_bounds == DURATION_BOUNDS
    metric = traffic.receiver.metric("gen_ai.client.operation.duration")
    assert metric is not None and (metric.unit, metric.kind) == ("s", "histogram")
    assert otlp_points(traffic, "gen_ai.client.operation.time_to_first_chunk", role("legacy"))
    for kind in ("input", "output"):
        assert otlp_points(traffic, "gen_ai.client.token.usage",
                           role("orchestrator", **{"gen_ai.token.type": kind}))
    assert otlp_points(traffic, "llm_shadow.cost.usd", role("legacy"))
    assert otlp_points(traffic, "llm_shadow.divergence.score",
                       lambda p: p.attributes.get("llm_shadow.route") == "/shadow/openai")
    assert otlp_points(traffic, "llm_shadow.shadow.skipped",
                       lambda p: p.attributes.get("llm_shadow.shadow.skip_reason")
                       == "sampled_out")
