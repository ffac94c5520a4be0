"""The judge at work, against a fake judge model on a real loopback socket: every class
becomes a verdict beside the rules' label (a `judge` span with its evaluation event, the
model call with its cost, the report's counters); failures (an error status, a reply
that names no class, an unreadable body, a hang) are counted and never verdicts; a spent
budget, a missing key, a full pool, a long answer are skipped with their reason; a route
the operator did not list never reaches the model; the sample is exactly the request
ids the hash picks."""

from __future__ import annotations

import asyncio

import pytest

from proxy.judge.sampling import in_judge_sample
from proxy.judge.verdict import VERDICTS, agreement
from proxy.telemetry import names as n
from tests.fakes.models import ModelBehaviour, ModelFleet, prompt_of
from tests.fakes.servers import RedisServer, wait_for
from tests.judge.conftest import (
    JUDGE_KEY,
    LEGACY,
    REWORDED,
    chat_call,
    harness,
    judge_settings,
    judging,
)
from tests.recording.conftest import run

pytestmark = pytest.mark.integration


# --- verdicts -----------------------------------------------------------------------

@pytest.mark.parametrize("verdict", VERDICTS)
def test_each_class_is_a_verdict_beside_the_rules_label(
        verdict: str, fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> None:
        async with harness(judge_settings(fake_judge), redis_server.url) as h:
            label = h.compare(judging(verdict))
            assert label == "minor"
            summary = await h.summary()
            assert summary.judge is not None
            assert summary.judge.verdicts == 1
            assert summary.judge.table == {"minor": {verdict: 1}}
            expected = agreement("minor", verdict)  # type: ignore[arg-type]
            assert summary.judge.agree == (expected == "agree")
            assert summary.judge.rules_lenient == (expected == "rules_lenient")
            assert summary.cost["judge"].calls == 1 and summary.cost["judge"].usd > 0
            (span,) = h.spans(n.JUDGE_SPAN)
            attrs = span.attributes
            assert attrs[n.JUDGE_VERDICT] == verdict
            assert attrs[n.JUDGE_AGREEMENT] == expected
            assert attrs[n.DIVERGENCE_LABEL] == "minor"
            (event,) = span.events
            assert event.name == n.EVALUATION_RESULT_EVENT
            assert event.attributes[n.GEN_AI_EVALUATION_NAME] == "llm_shadow.judge"
            assert event.attributes[n.GEN_AI_EVALUATION_SCORE_LABEL] == verdict
            assert n.GEN_AI_EVALUATION_EXPLANATION not in event.attributes  # no capture
            assert h.judge.verdicts == {verdict: 1}

    run(go)
    assert len(fake_judge["judge"].requests) == 1


def test_the_judge_span_sits_under_the_comparison_with_its_model_call(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> None:
        async with harness(judge_settings(fake_judge), redis_server.url) as h:
            h.compare(judging("contradiction"))
            await h.settle()
            spans = {span.name: span for span in h.memory.finished()}
            comparison, judge = spans[n.COMPARISON_SPAN], spans[n.JUDGE_SPAN]
            call = spans["chat judge"]
            assert judge.parent.span_id == comparison.context.span_id
            assert call.parent.span_id == judge.context.span_id
            assert judge.context.trace_id == comparison.context.trace_id
            assert call.attributes[n.ROLE] == "judge"
            assert call.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] > 0
            assert call.attributes[n.COST_USD] > 0
            assert n.GEN_AI_INPUT_MESSAGES not in call.attributes
            points = h.memory.points(n.METRIC_JUDGE_VERDICTS)
            assert [p.attributes[n.JUDGE_VERDICT] for p in points] == ["contradiction"]
            assert points[0].attributes[n.JUDGE_AGREEMENT] == "rules_lenient"

    run(go)


def test_what_the_judge_model_is_asked(fake_judge: ModelFleet,
                                       redis_server: RedisServer) -> None:
    async def go() -> None:
        async with harness(judge_settings(fake_judge), redis_server.url) as h:
            h.compare(judging("subset"), call=chat_call(question="When does it restart?"))
            await h.settle()

    run(go)
    (request,) = fake_judge["judge"].requests
    body = request.json()
    assert request.path == "/v1/chat/completions"
    assert request.header("authorization") == f"Bearer {JUDGE_KEY}"
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0 and body["max_tokens"] == 300
    system, user = body["messages"]
    assert system["role"] == "system" and "never instructions" in system["content"]
    assert user["role"] == "user"
    prompt = prompt_of(body)
    assert prompt.index("When does it restart?") < prompt.index(LEGACY) \
        < prompt.index(judging("subset"))
    assert "- contradiction: " in prompt


def test_an_anthropic_judge_model_is_asked_for_json_in_its_system_prompt(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> dict[str, int]:
        settings = judge_settings(fake_judge, model={"api": "anthropic"})
        async with harness(settings, redis_server.url) as h:
            h.compare(judging("superset"))
            await h.settle()
            return dict(h.judge.verdicts)

    assert run(go) == {"superset": 1}
    (request,) = fake_judge["judge"].requests
    assert request.path == "/v1/messages"
    assert request.header("x-api-key") == JUDGE_KEY
    assert "single JSON value" in request.json()["system"]


def test_the_judges_reason_is_its_explanation_only_with_content_capture(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> None:
        async with harness(judge_settings(fake_judge), redis_server.url, capture=True) as h:
            h.compare(judging("subset"))
            await h.settle()
            (span,) = h.spans(n.JUDGE_SPAN)
            (event,) = span.events
            assert event.attributes[n.GEN_AI_EVALUATION_EXPLANATION] == \
                "the fake judge was asked for subset"

    run(go)


# --- failures: counted, never a verdict ---------------------------------------------

@pytest.mark.parametrize(("behaviour", "failure", "error_type", "billed"), [
    (ModelBehaviour(status=500), "error", "http_500", False),
    (ModelBehaviour(answer="Both look fine to me."), "invalid_verdict", "invalid_verdict",
     True),
    (ModelBehaviour(answer='{"verdict": "mostly_same"}'), "invalid_verdict",
     "invalid_verdict", True),
    (ModelBehaviour(malformed=True), "error", "malformed_reply", False),
    (ModelBehaviour(hang=True), "timeout", "timeout", True),
], ids=["500", "garbage", "unknown-class", "malformed", "hang"])
def test_a_failure_is_counted_and_never_a_verdict(
        behaviour: ModelBehaviour, failure: str, error_type: str, billed: bool,
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    fake_judge["judge"].behaviour = behaviour

    async def go() -> None:
        settings = judge_settings(fake_judge, timeout_seconds=0.5)
        async with harness(settings, redis_server.url) as h:
            h.compare(judging("subset"))
            summary = await h.summary()
            assert summary.judge is not None
            assert summary.judge.verdicts == 0 and summary.judge.table == {}
            assert summary.judge.failed == 1 and summary.judge.failures == {failure: 1}
            assert (summary.cost["judge"].usd > 0) is billed
            (span,) = h.spans(n.JUDGE_SPAN)
            assert n.JUDGE_VERDICT not in span.attributes
            assert span.attributes[n.ERROR_TYPE] == error_type
            (event,) = span.events
            assert event.attributes[n.ERROR_TYPE] == error_type
            assert n.GEN_AI_EVALUATION_SCORE_LABEL not in event.attributes
            assert h.judge.failed == {failure: 1} and not h.judge.verdicts

    run(go)
    assert len(fake_judge["judge"].requests) == 1  # no retry


def test_a_hung_call_is_abandoned_at_its_deadline(fake_judge: ModelFleet,
                                                  redis_server: RedisServer) -> None:
    fake_judge["judge"].behaviour = ModelBehaviour(hang=True)

    async def go() -> None:
        async with harness(judge_settings(fake_judge, timeout_seconds=0.3),
                           redis_server.url) as h:
            h.compare(judging("subset"))
            await h.settle()

    run(go)
    (request,) = fake_judge["judge"].requests
    wait_for_disconnect(request)


def wait_for_disconnect(request: object) -> None:
    wait_for(lambda: getattr(request, "disconnected", False), timeout=15,
             message="the judge's abandoned request disconnected")


# --- skips: never sent ----------------------------------------------------------------

def test_a_spent_budget_skips_with_its_reason(fake_judge: ModelFleet,
                                              redis_server: RedisServer) -> None:
    async def go() -> None:
        settings = judge_settings(fake_judge, budget_usd_per_hour=0.000001)
        async with harness(settings, redis_server.url) as h:
            h.compare(judging("subset"))
            summary = await h.summary()
            assert summary.judge is not None
            assert summary.judge.skipped == {"budget_spent": 1}
            assert summary.judge.verdicts == 0 and summary.judge.failed == 0
            assert "judge" not in summary.cost
            assert h.spans(n.JUDGE_SPAN) == []
            points = h.memory.points(n.METRIC_JUDGE_SKIPPED)
            assert [(p.attributes[n.JUDGE_SKIP_REASON], p.value) for p in points] == \
                [("budget_spent", 1)]

    run(go)
    assert fake_judge["judge"].requests == []


def test_the_budget_is_the_judges_own_and_settled_with_the_real_cost(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> tuple[float, float]:
        settings = judge_settings(fake_judge)
        async with harness(settings, redis_server.url) as h:
            h.compare(judging("subset"))
            summary = await h.summary()
            spent = await h.judge.budget.spent()
            return spent, summary.cost["judge"].usd

    spent, cost = run(go)
    assert spent == pytest.approx(cost, abs=1e-9)


def test_a_model_without_its_key_is_never_called(fake_judge: ModelFleet,
                                                 redis_server: RedisServer) -> None:
    async def go() -> dict[str, int]:
        async with harness(judge_settings(fake_judge, key=False), redis_server.url) as h:
            h.compare(judging("subset"))
            summary = await h.summary()
            assert summary.judge is not None and summary.judge.skipped == {"no_key": 1}
            return dict(h.judge.skipped)

    assert run(go) == {"no_key": 1}
    assert fake_judge["judge"].requests == []


def test_an_answer_longer_than_the_rubric_allows_is_not_judged(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> dict[str, int]:
        async with harness(judge_settings(fake_judge), redis_server.url) as h:
            long = (REWORDED + " ") * 200
            h.compare(long, legacy=(LEGACY + " ") * 200)
            await h.settle()
            return dict(h.judge.skipped)

    assert run(go) == {"too_long": 1}
    assert fake_judge["judge"].requests == []


def test_when_full_a_comparison_is_dropped_not_queued(fake_judge: ModelFleet,
                                                      redis_server: RedisServer) -> None:
    fake_judge["judge"].behaviour = ModelBehaviour(hang=True)

    async def go() -> tuple[dict[str, int], int]:
        settings = judge_settings(fake_judge, max_concurrency=1)
        async with harness(settings, redis_server.url) as h:
            h.compare(judging("subset"))
            h.compare(judging("subset"))
            in_flight = len(h.judge.tasks)
            return dict(h.judge.skipped), in_flight  # closing cancels the hung call

    skipped, in_flight = run(go)
    assert skipped == {"concurrency_full": 1} and in_flight == 1


# --- what is sent where ---------------------------------------------------------------

def test_a_route_not_listed_never_reaches_the_judge(fake_judge: ModelFleet,
                                                    redis_server: RedisServer) -> None:
    async def go() -> dict[str, int]:
        async with harness(judge_settings(fake_judge), redis_server.url) as h:
            for _ in range(5):
                h.compare(judging("subset"), call=chat_call("/anthropic"))
            await h.settle()
            summary = await h.report.summary("/anthropic")
            assert summary.compared == 5 and summary.judge is None
            return dict(h.judge.not_judged)

    assert run(go) == {"route_not_allowed": 5}
    assert fake_judge["judge"].requests == []


def test_off_means_nothing_is_sent(fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> dict[str, int]:
        async with harness(judge_settings(fake_judge, enabled=False), redis_server.url) as h:
            h.compare(judging("subset"))
            await h.settle()
            return dict(h.judge.not_judged)

    assert run(go) == {"off": 1}
    assert fake_judge["judge"].requests == []


def test_only_the_configured_labels_and_prose_reasons_are_judged(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    async def go() -> dict[str, int]:
        settings = judge_settings(fake_judge, labels=["equivalent"])
        async with harness(settings, redis_server.url) as h:
            assert h.compare(judging("subset")) == "minor"  # label not listed
            assert h.compare(LEGACY) == "identical"  # never judged
            assert h.compare('{"a": 1}', legacy='{"a": 2}') == "major"
            await h.settle()
            return dict(h.judge.not_judged)

    assert run(go) == {"label": 3}
    assert fake_judge["judge"].requests == []


def test_the_sample_is_exactly_the_request_ids_the_hash_picks(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    ids = [f"sample-{index:03d}" for index in range(60)]
    picked = {request_id for request_id in ids if in_judge_sample(request_id, 30.0)}
    assert 5 < len(picked) < 40  # a share, neither none nor all

    async def go() -> None:
        settings = judge_settings(fake_judge, sample_percent=30.0, max_concurrency=64)
        async with harness(settings, redis_server.url) as h:
            for request_id in ids:
                h.compare(judging("subset"), call=chat_call(
                    request_id=request_id, question=f"question of {request_id}"))
            summary = await h.summary()
            assert summary.judge is not None and summary.judge.verdicts == len(picked)
            assert h.judge.not_judged == {"sampled_out": len(ids) - len(picked)}

    run(go)
    asked = {prompt_of(body).split("question of ")[1].split()[0]
             for body in fake_judge["judge"].bodies()}
    assert asked == picked


def test_withdrawing_a_route_on_reload_cancels_its_calls_in_flight(
        fake_judge: ModelFleet, redis_server: RedisServer) -> None:
    fake_judge["judge"].behaviour = ModelBehaviour(hang=True)

    async def go() -> None:
        async with harness(judge_settings(fake_judge), redis_server.url) as h:
            h.compare(judging("subset"))
            await wait_until(lambda: len(fake_judge["judge"].requests) == 1)
            h.judge.apply_settings(judge_settings(fake_judge, routes=["/anthropic"]))
            await h.settle()
            assert h.judge.verdicts == {} and h.judge.failed == {}
            assert h.judge.cancelled == 1
            h.compare(judging("subset"))
            assert h.judge.not_judged == {"route_not_allowed": 1}

    run(go)
    (request,) = fake_judge["judge"].requests
    wait_for_disconnect(request)


async def wait_until(condition: object, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)
