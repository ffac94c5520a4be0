"""Attribute sets built from records (pure): what goes on spans, events and metrics."""

from __future__ import annotations

import pytest

from proxy.telemetry import attributes as a
from proxy.telemetry import names as n
from proxy.telemetry.records import Comparison, Judgement, ModelCall

CALL = ModelCall(role="orchestrator", operation="chat", provider="anthropic",
                 request_model="claude-x", start=1.0, end=2.0, route="/anthropic",
                 response_id="msg_1", server_address="api.anthropic.com", server_port=443,
                 input_tokens=30, output_tokens=4, cache_creation_input_tokens=20,
                 usage_estimated=True, stream_truncated=True, error_type="overloaded_error",
                 input_messages="[]", output_messages="[]", system_instructions="[]")


def test_model_call_attributes_without_content() -> None:
    attrs = a.model_call_attributes(CALL, n.RELEASED, content=False)
    assert attrs[n.RELEASED.cache_creation_input_tokens] == 20
    assert attrs["llm_shadow.usage.estimated"] is True
    assert attrs["llm_shadow.stream.truncated"] is True
    assert attrs["error.type"] == "overloaded_error"
    assert "gen_ai.request.stream" not in attrs
    assert not {"gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions"} & attrs.keys()
    assert "gen_ai.usage.cost.amount" not in attrs


def test_model_call_attributes_with_content() -> None:
    attrs = a.model_call_attributes(CALL, n.LATEST_EXPERIMENTAL, content=True)
    assert {"gen_ai.input.messages", "gen_ai.output.messages",
            "gen_ai.system_instructions"} <= attrs.keys()
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 20


def test_metric_attributes_are_low_cardinality() -> None:
    attrs = a.model_metric_attributes(CALL)
    assert attrs == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                     "gen_ai.request.model": "claude-x", "llm_shadow.role": "orchestrator",
                     "llm_shadow.route": "/anthropic", "error.type": "overloaded_error",
                     "server.address": "api.anthropic.com", "server.port": 443}


@pytest.mark.parametrize("status, error, expected", [
    (200, None, None), (404, None, None), (502, None, "502"), (None, None, None),
    (502, "upstream_timeout", "upstream_timeout"), (None, "a message with spaces", "_OTHER"),
])
def test_server_error_type(status: int | None, error: str | None, expected: str | None) -> None:
    assert a.server_error_type(status, error) == expected


def test_outcome_attributes_skip_unknowns() -> None:
    assert a.outcome_attributes(
        None, decision=None, decision_reason=None, bucket=None, answered_by=None,
        error_type=None, fallback_reason=None, shadow_skip_reason="budget", flag_version=None,
        flag_state=None, client_gone=True) == {"llm_shadow.shadow.skip_reason": "budget",
                                               "llm_shadow.client_gone": True}


def test_evaluation_event_truncates_the_explanation() -> None:
    comparison = Comparison(route="/x", score=0.5, label="major", reason="fact_changed",
                            evidence=("e" * 2000,))
    event = a.evaluation_event_attributes(comparison, content=True)
    assert len(str(event["gen_ai.evaluation.explanation"])) == a.MAX_EXPLANATION
    assert event["gen_ai.evaluation.name"] == n.EVALUATION_NAME


def test_server_attributes_redact_the_query() -> None:
    attrs = a.server_attributes("POST", "/openai", "/openai/v1/x?token=S", "r", None, None,
                                "http")
    assert attrs["url.query"] == "token=REDACTED" and "server.address" not in attrs


# --- the judge ------------------------------------------------------------------------

JUDGED = Judgement(route="/openai", rules_label="equivalent", verdict="contradiction",
                   agreement="rules_lenient", start=1.0, end=2.0,
                   explanation="x" * (a.MAX_EXPLANATION + 50))


def test_judgement_span_and_event_attributes() -> None:
    assert a.judgement_attributes(JUDGED) == {
        n.ROUTE: "/openai", n.DIVERGENCE_LABEL: "equivalent",
        n.JUDGE_VERDICT: "contradiction", n.JUDGE_AGREEMENT: "rules_lenient"}
    event = a.judgement_event_attributes(JUDGED)
    assert event[n.GEN_AI_EVALUATION_NAME] == "llm_shadow.judge"
    assert event[n.GEN_AI_EVALUATION_SCORE_LABEL] == "contradiction"
    assert n.GEN_AI_EVALUATION_SCORE_VALUE not in event  # a class has no score value
    assert len(str(event[n.GEN_AI_EVALUATION_EXPLANATION])) == a.MAX_EXPLANATION


def test_a_failed_judgement_has_an_error_type_and_no_label() -> None:
    failed = Judgement(route="/openai", rules_label="minor", verdict=None, agreement=None,
                       start=1.0, end=2.0, error_type="http_500")
    assert a.judgement_attributes(failed)[n.ERROR_TYPE] == "http_500"
    event = a.judgement_event_attributes(failed)
    assert event == {n.GEN_AI_EVALUATION_NAME: "llm_shadow.judge", n.ERROR_TYPE: "http_500"}
    assert a.judgement_metric_attributes(failed) == {
        n.ROUTE: "/openai", n.DIVERGENCE_LABEL: "minor", n.JUDGE_VERDICT: "none",
        n.ERROR_TYPE: "http_500"}


def test_judgement_metric_attributes_are_low_cardinality() -> None:
    assert a.judgement_metric_attributes(JUDGED) == {
        n.ROUTE: "/openai", n.DIVERGENCE_LABEL: "equivalent",
        n.JUDGE_VERDICT: "contradiction", n.JUDGE_AGREEMENT: "rules_lenient"}


REASONED = Comparison(route="/x", score=1.0, label="major", reason="fact_changed",
                      evidence=("Paris → Lyon", "$3.99 → $4.99"))


def test_the_reason_is_on_the_span_the_event_and_the_metrics_without_content() -> None:
    span = a.comparison_attributes(REASONED)
    event = a.evaluation_event_attributes(REASONED)
    metric = a.comparison_metric_attributes(REASONED)
    assert span[n.DIVERGENCE_REASON] == "fact_changed"
    assert event[n.GEN_AI_EVALUATION_EXPLANATION] == "fact_changed"
    assert metric == {n.ROUTE: "/x", n.DIVERGENCE_LABEL: "major",
                      n.DIVERGENCE_REASON: "fact_changed"}
    everything = repr((span, event, metric))
    assert "Paris" not in everything and "Lyon" not in everything
    assert n.DIVERGENCE_EVIDENCE not in span


def test_the_evidence_appears_only_with_content() -> None:
    span = a.comparison_attributes(REASONED, content=True)
    event = a.evaluation_event_attributes(REASONED, content=True)
    assert span[n.DIVERGENCE_EVIDENCE] == ["Paris → Lyon", "$3.99 → $4.99"]
    assert event[n.GEN_AI_EVALUATION_EXPLANATION] == \
        "fact_changed: Paris → Lyon; $3.99 → $4.99"
    assert a.comparison_metric_attributes(REASONED) == \
        a.comparison_metric_attributes(Comparison(route="/x", score=1.0, label="major",
                                                  reason="fact_changed"))


def test_a_reason_that_is_not_a_code_never_becomes_a_label() -> None:
    odd = Comparison(route="/x", score=1.0, label="major", reason="Paris became Lyon")
    assert a.comparison_metric_attributes(odd)[n.DIVERGENCE_REASON] == "_OTHER"
    assert a.comparison_attributes(odd)[n.DIVERGENCE_REASON] == "_OTHER"
