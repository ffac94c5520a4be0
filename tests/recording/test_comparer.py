"""The comparer: it compares two complete answers under the route's policy, keeps this
replica's divergence and noise-floor rates per route, and hands the result to telemetry
(a comparison span under the request) and to the report (a real buffer writing to a
real redis-server)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from proxy.comparison import DivergencePolicy, Limits
from proxy.exchange import Captured
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.result import CallRecord, OrchestratorAnswer
from proxy.orchestrator.target import TargetCall
from proxy.recording.comparer import Comparer, RouteRates, failure_outcome
from proxy.report.buffer import ReportBuffer
from proxy.report.entry import RoleCost
from proxy.telemetry import names as n
from proxy.telemetry.recorder import Telemetry
from tests.fakes.records import destination, quiet_telemetry, target_call
from tests.fakes.servers import RedisServer
from tests.recording.conftest import report_on, run
from tests.telemetry.conftest import Memory

JSON = [(b"content-type", b"application/json")]
ONE = "Use git rebase -i to squash the last three commits."
OTHER = "Bananas are rich in potassium and easy to digest."


def answer(text: str, *, started: float = 0.0, finished: float = 1.0,
           completed: bool = True) -> Captured:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})
    return Captured(200, JSON, body, False, started, started + 0.1, finished,
                    completed=completed)


def call(route: str = "/openai", request_id: str = "r1") -> TargetCall:
    where = destination(route.encode() + b"/v1/chat/completions")
    return target_call("shadow", where, payload={"model": "gpt-4o-mini"},
                       request_id=request_id)


def comparer_for(telemetry: Telemetry | None = None, report: ReportBuffer | None = None,
                 policy: DivergencePolicy | None = None) -> Comparer:
    return Comparer(policy or DivergencePolicy(), Limits(), telemetry or quiet_telemetry(),
                    report)


def candidate(comparer: Comparer, legacy: str, orchestrator: str, **options: Any) -> str:
    route = options.pop("route", "/openai")
    result = comparer.candidate(call(route), legacy=answer(legacy),
                                candidate=answer(orchestrator), parent=None,
                                outcome="ok", **options)
    return result.label


def noise(comparer: Comparer, first: str, second: str, route: str = "/openai") -> str:
    return comparer.noise(call(route), legacy=answer(first), resample=answer(second)).label


# --- rates --------------------------------------------------------------------------

@pytest.mark.parametrize(("rates", "floor", "above"), [
    (RouteRates(), None, None),
    (RouteRates(compared=4, divergent=1), None, None),  # no noise sample yet
    (RouteRates(noise=4, noise_divergent=1), 0.25, None),  # nothing compared yet
    (RouteRates(compared=4, divergent=2, noise=4, noise_divergent=1), 0.25, True),
    (RouteRates(compared=4, divergent=1, noise=4, noise_divergent=1), 0.25, False),  # equal
    (RouteRates(compared=4, divergent=0, noise=2, noise_divergent=0), 0.0, False),
    (RouteRates(compared=4, divergent=1, noise=2, noise_divergent=0), 0.0, True),
])
def test_noise_floor_arithmetic(rates: RouteRates, floor: float | None,
                                above: bool | None) -> None:
    assert rates.noise_floor == floor
    assert rates.above_noise is above


def test_rates_count_per_route() -> None:
    comparer = comparer_for()
    assert candidate(comparer, ONE, OTHER) == "major"
    assert candidate(comparer, ONE, ONE) == "identical"
    assert candidate(comparer, ONE, OTHER, route="/anthropic") == "major"
    assert noise(comparer, ONE, ONE) == "identical"
    assert noise(comparer, ONE, OTHER) == "major"
    assert comparer.rates["/openai"] == RouteRates(compared=2, divergent=1, noise=2,
                                                   noise_divergent=1)
    assert comparer.rates["/anthropic"] == RouteRates(compared=1, divergent=1)


def test_the_routes_own_policy_applies() -> None:
    policy = DivergencePolicy.model_validate({"routes": {"/strict": {"case_sensitive": True}}})
    comparer = comparer_for(policy=policy)
    assert candidate(comparer, "Paris is the capital", "PARIS IS THE CAPITAL") == "equivalent"
    # Case counts on /strict; the facts are the same, so the comparison caps it at minor
    # (the rules: same facts in other words are at most minor).
    assert candidate(comparer, "Paris is the capital", "PARIS IS THE CAPITAL",
                     route="/strict") == "minor"


def test_a_routes_number_tolerance_applies() -> None:
    policy = DivergencePolicy.model_validate(
        {"routes": {"/tolerant": {"number_tolerance": 0.02}}})
    comparer = comparer_for(policy=policy)
    assert candidate(comparer, "It costs $100.", "It costs $101.") == "major"
    assert candidate(comparer, "It costs $100.", "It costs $101.",
                     route="/tolerant") != "major"


@pytest.mark.parametrize(("reason", "outcome"), [
    ("low_confidence", "low_confidence"), ("timeout", "failed"), ("error", "failed"),
    ("failed:no valid answer", "failed"), (None, "failed")])
def test_failure_outcome(reason: str | None, outcome: str) -> None:
    assert failure_outcome(reason) == outcome


# --- telemetry ----------------------------------------------------------------------

def test_a_comparison_span_carries_the_divergence_against_the_noise_floor(
        memory: Callable[..., Memory]) -> None:
    recorded = memory()
    comparer = comparer_for(recorded.telemetry)
    trace = recorded.telemetry.start_request("POST", "/openai", "/openai/v1/chat/completions",
                                             "r1")
    noise(comparer, ONE, ONE)
    noise(comparer, ONE, OTHER)  # noise floor 0.5
    comparer.candidate(call(), legacy=answer(ONE, finished=1.0),
                       candidate=answer(OTHER, finished=3.5), parent=trace, outcome="ok")
    recorded.telemetry.end_request(trace, 200)
    spans = {span.name: span for span in recorded.finished()}
    comparison = spans[n.COMPARISON_SPAN]
    assert comparison.parent is not None
    assert comparison.parent.span_id == spans["POST /openai"].context.span_id
    attributes = comparison.attributes or {}
    assert attributes[n.DIVERGENCE_LABEL] == "major"
    assert attributes[n.NOISE_FLOOR] == 0.5
    assert attributes[n.DIVERGENCE_ABOVE_NOISE] is True  # 1 of 1 against 1 of 2
    assert attributes[n.LATENCY_DELTA] == pytest.approx(2.5)  # the orchestrator was slower


PARIS = "The capital of France is Paris."
LYON = "The capital of France is Lyon."


@pytest.mark.parametrize("capture", ["none", "span", "event", "span_and_event"])
def test_the_reason_is_always_recorded_the_evidence_only_with_content_capture(
        memory: Callable[..., Memory], capture: str) -> None:
    recorded = memory(capture=capture)
    comparer = comparer_for(recorded.telemetry)
    assert candidate(comparer, PARIS, LYON) == "major"
    (span,) = recorded.finished()
    attributes = dict(span.attributes or {})
    (event,) = span.events
    event_attributes = dict(event.attributes or {})
    assert attributes[n.DIVERGENCE_REASON] == "fact_changed"
    explanation = event_attributes[n.GEN_AI_EVALUATION_EXPLANATION]
    (count,) = recorded.points(n.METRIC_COMPARISONS)
    assert dict(count.attributes)[n.DIVERGENCE_REASON] == "fact_changed"
    assert "Lyon" not in repr(dict(count.attributes))
    on_span = capture in ("span", "span_and_event")
    in_event = capture in ("event", "span_and_event")
    assert (n.DIVERGENCE_EVIDENCE in attributes) is on_span
    if on_span:
        assert "Paris → Lyon" in attributes[n.DIVERGENCE_EVIDENCE]
    else:
        assert "Lyon" not in repr(attributes)
    assert explanation == ("fact_changed: Paris → Lyon" if in_event else "fact_changed")


def test_the_latency_delta_is_negative_when_the_orchestrator_is_faster(
        memory: Callable[..., Memory]) -> None:
    recorded = memory()
    comparer_for(recorded.telemetry).candidate(
        call(), legacy=answer(ONE, started=0.0, finished=2.0),
        candidate=answer(ONE, started=5.0, finished=5.5), parent=None, outcome="ok")
    (span,) = recorded.finished()
    assert (span.attributes or {})[n.LATENCY_DELTA] == pytest.approx(-1.5)


def test_no_rates_on_the_span_before_any_noise_sample(memory: Callable[..., Memory]) -> None:
    recorded = memory()
    candidate(comparer_for(recorded.telemetry), ONE, OTHER)
    (span,) = recorded.finished()
    assert n.NOISE_FLOOR not in (span.attributes or {})
    assert n.DIVERGENCE_ABOVE_NOISE not in (span.attributes or {})


def test_noise_samples_record_no_span(memory: Callable[..., Memory]) -> None:
    recorded = memory()
    noise(comparer_for(recorded.telemetry), ONE, OTHER)
    assert recorded.finished() == []


# --- the report ---------------------------------------------------------------------

@pytest.mark.integration
def test_comparisons_noise_outcomes_and_costs_reach_the_report(
        redis_server: RedisServer) -> None:
    async def go() -> None:
        async with report_on(redis_server.url) as report:
            comparer = comparer_for(report=report.buffer)
            comparer.candidate(call(request_id="a"), legacy=answer(ONE, finished=1.0),
                               candidate=answer(OTHER, finished=1.5), parent=None,
                               outcome="ok")
            comparer.candidate(call(request_id="b"), legacy=answer(ONE, finished=1.0),
                               candidate=answer(ONE, finished=1.5), parent=None,
                               outcome="low_confidence", divert=True)
            comparer.noise(call(request_id="a"), legacy=answer(ONE), resample=answer(OTHER))
            comparer.outcome(route="/openai", request_id="c", outcome="failed",
                             costs=(RoleCost("orchestrator", 0.25),), divert=True,
                             fallback=True)
            comparer.costs("/openai", "a", (RoleCost("legacy", 0.5),))
            comparer.costs("/openai", "c", (RoleCost("legacy", None),))
            summary = await report.summary("/openai")
        assert summary.compared == 2
        assert summary.labels["major"] == 1 and summary.labels["identical"] == 1
        assert summary.models["gpt-4o-mini"]["compared"] == 2
        assert (summary.noise_samples, summary.noise_floor) == (1, 1.0)
        assert summary.latency_samples == 2
        assert summary.latency_delta_p50_ms is not None and summary.latency_delta_p50_ms > 0
        assert summary.orchestrator_requests == 3
        assert (summary.orchestrator_low_confidence, summary.orchestrator_errors) == (1, 1)
        assert (summary.divert_requests, summary.divert_fallbacks) == (2, 1)
        assert summary.cost["orchestrator"].usd == pytest.approx(0.25)
        legacy = summary.cost["legacy"]
        assert legacy.usd == pytest.approx(0.5)
        assert (legacy.calls, legacy.unpriced) == (2, 1)
        assert [top.request_id for top in summary.top][:1] == ["a"]

    run(go)


def test_without_a_report_the_comparer_still_counts() -> None:
    comparer = comparer_for(report=None)
    candidate(comparer, ONE, OTHER)
    comparer.outcome(route="/openai", request_id="x", outcome="failed")
    comparer.costs("/openai", "x", (RoleCost("legacy", 0.1),))
    assert comparer.rates["/openai"].compared == 1


def test_an_answer_cut_short_is_compared_as_truncated() -> None:
    comparer = comparer_for()
    result = comparer.candidate(call(), legacy=answer(ONE),
                                candidate=answer(ONE, completed=False), parent=None,
                                outcome="ok")
    assert result.truncated


# --- kept pairs and per-model rows --------------------------------------------------

def pipeline_answer(*contributors: str) -> OrchestratorAnswer:
    """What the in-process pipeline reports: two models called, the first one used."""
    calls = (CallRecord("qwen-max", "Alibaba", "openai", "q", 100.0, 100.2, "valid",
                        cost_usd=0.001),
             CallRecord("deepseek-chat", "DeepSeek", "openai", "d", 100.0, 130.0, "timeout"))
    return OrchestratorAnswer("ok", "", "r1", TaskType.SIMPLE_QUERY,
                              contributing_models=contributors, calls=calls)


@pytest.mark.integration
@pytest.mark.parametrize("capture", ["none", "span"])
def test_a_divergent_pair_is_kept_only_with_content_capture(
        redis_server: RedisServer, memory: Callable[..., Memory], capture: str) -> None:
    recorded = memory(capture=capture)

    async def go() -> None:
        async with report_on(redis_server.url, keep_examples=2) as report:
            comparer = Comparer(DivergencePolicy(), Limits(), recorded.telemetry, report.buffer,
                                keep_examples=2)
            trace = recorded.telemetry.start_request("POST", "/openai", "/openai/v1/x", "r1")
            for request_id, (legacy, orchestrator) in enumerate(
                    [(PARIS, LYON), (PARIS, PARIS), (ONE, OTHER), (PARIS, LYON), (ONE, ONE)]):
                comparer.candidate(call(request_id=f"r{request_id}"), legacy=answer(legacy),
                                   candidate=answer(orchestrator), parent=trace,
                                   outcome="ok", answer=pipeline_answer("qwen-max"))
            summary = await report.summary("/openai")
            kept = await report.store.examples("/openai", 0, time.time() + 1)
            keys = await report.store.client.keys(f"{report.store.prefix}:examples:*")
        assert summary.compared == 5 and summary.labels["major"] == 3
        if capture == "none":
            assert kept == [] and keys == []
            return
        # keep_examples 2: the last two of the three major pairs, newest first.
        assert [e.request_id for e in kept] == ["r3", "r2"]
        newest = kept[0]
        assert (newest.label, newest.reason, newest.evidence) == \
            ("major", "fact_changed", ("Paris → Lyon",))
        assert newest.legacy.text == PARIS and newest.orchestrator.text == LYON
        assert newest.trace_id == trace.trace_id and len(newest.trace_id) == 32
        assert newest.models == ("qwen-max",) and newest.legacy_model == "gpt-4o-mini"

    run(go)


def test_no_pair_is_kept_without_keep_examples(memory: Callable[..., Memory]) -> None:
    recorded = memory(capture="span")
    buffer = ReportBuffer(sink=None)  # type: ignore[arg-type]  # never flushed here
    comparer = Comparer(DivergencePolicy(), Limits(), recorded.telemetry, buffer)
    candidate(comparer, PARIS, LYON)
    assert [entry.example for entry in buffer.pending] == [None]


def test_a_skipped_shadow_is_counted_for_the_report_not_queued_as_an_entry() -> None:
    buffer = ReportBuffer(sink=None)  # type: ignore[arg-type]  # never flushed here
    comparer = Comparer(DivergencePolicy(), Limits(), quiet_telemetry(), buffer)
    for _ in range(3):
        comparer.skipped("/openai", "overload")
    assert buffer.pending == [] and buffer.skips == {("/openai", "overload"): 3}


@pytest.mark.integration
def test_the_pipelines_model_calls_reach_the_report_per_model(
        redis_server: RedisServer) -> None:
    async def go() -> None:
        async with report_on(redis_server.url) as report:
            comparer = comparer_for(report=report.buffer)
            answered = pipeline_answer("qwen-max")
            comparer.costs("/openai", "r1", (RoleCost("orchestrator", 0.001),),
                           answer=answered)
            comparer.candidate(call(), legacy=answer(PARIS), candidate=answer(LYON),
                               parent=None, outcome="ok", answer=answered)
            comparer.outcome(route="/openai", request_id="r2", outcome="failed",
                             answer=pipeline_answer())
            summary = await report.summary("/openai")
        qwen = summary.orchestrator_models["qwen-max"]
        deepseek = summary.orchestrator_models["deepseek-chat"]
        assert (qwen.selected, qwen.used, qwen.answers, qwen.compared) == (2, 1, 2, 1)
        assert qwen.labels["major"] == 1 and qwen.usd == pytest.approx(0.002)
        assert qwen.latency_p50_ms == pytest.approx(200, rel=0.1)
        assert (deepseek.selected, deepseek.timeouts, deepseek.used) == (2, 2, 0)
        assert deepseek.compared == 0
        assert qwen.selected_share == 1.0  # 2 orchestrated requests, picked for both

    run(go)


def test_evidence_shown_with_content_capture_never_quotes_a_credential(
        memory: Callable[..., Memory]) -> None:
    """Content capture is for the answers, not for keys they may quote: a credential in
    either answer is blanked in the span's evidence even where the evidence quotes it
    without its name (`... → sk-...`)."""
    recorded = memory(capture="span")
    comparer = comparer_for(recorded.telemetry)
    candidate(comparer, "Use the key api_key=sk-live-aaaa1111 for Paris.",
              "Use the key api_key=sk-live-bbbb2222 for Lyon.")
    (span,) = recorded.finished()
    evidence = repr((span.attributes or {})[n.DIVERGENCE_EVIDENCE])
    assert "Lyon" in evidence
    assert "sk-live" not in evidence
