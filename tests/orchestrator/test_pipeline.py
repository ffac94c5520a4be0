"""The pipeline end to end on real sockets: fake model servers (tests.fakes.models),
the orchestrator's own HTTP client, and for learning a real redis-server.

Nothing here measures time: concurrency is proven by what the servers saw (a rendezvous
only a concurrent fan-out can fill, overlapping receive/finish times), cancellation by
the servers seeing the client go away."""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from proxy.config.orchestrator import FeatureFlags
from proxy.deadline import Deadline
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.pipeline import FeedbackRefused
from proxy.orchestrator.request import LiveSettings
from tests.fakes.models import Gate, ModelBehaviour, ModelFleet
from tests.fakes.servers import RedisServer, wait_for
from tests.orchestrator.conftest import chat, fleet_settings, request, run, started

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}


def flags(**off: bool) -> LiveSettings:
    return LiveSettings(feature_flags=FeatureFlags(**off))


def test_the_fan_out_is_concurrent() -> None:
    gate = Gate(expected=3)
    with ModelFleet({name: ModelBehaviour(answer="Paris", gate=gate)
                     for name in ("a", "b", "c")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"enable_early_result_processing": False})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(chat("Capital?"),
                                                     task_hint="data_validation"))
            finally:
                await pipeline.aclose()

        answer = run(go())
    assert not gate.timed_out  # all three requests were in flight at once
    seen = [model.requests[0] for model in fleet]
    assert max(r.received_at for r in seen) < min(r.finished_at for r in seen)  # type: ignore[type-var]
    assert answer.ok and set(answer.contributing_models) == {"a", "b", "c"}


def test_without_parallel_execution_calls_do_not_overlap() -> None:
    with ModelFleet({name: ModelBehaviour(answer="Paris") for name in ("a", "b", "c")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"enable_early_result_processing": False})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(
                    chat("Capital?"), task_hint="data_validation",
                    live=flags(enable_parallel_execution=False)))
            finally:
                await pipeline.aclose()

        answer = run(go())
    seen = sorted((model.requests[0] for model in fleet), key=lambda r: r.received_at)
    for earlier, later in itertools.pairwise(seen):
        assert earlier.finished_at is not None and earlier.finished_at <= later.received_at
    assert answer.ok


def test_merge_picks_the_majority_among_equals() -> None:
    with ModelFleet({"a": ModelBehaviour(answer="Paris"), "b": ModelBehaviour(answer="paris."),
                     "c": ModelBehaviour(answer="Lyon")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"enable_early_result_processing": False})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(chat("Capital?"),
                                                     task_hint="data_validation"))
            finally:
                await pipeline.aclose()

        answer = run(go())
    assert set(answer.contributing_models) == {"a", "b"}
    assert answer.content is not None and answer.content.text.lower().startswith("paris")
    assert answer.confidence_scores["c"] < answer.confidence
    agreed = {call.model: call.agreed for call in answer.calls}
    assert agreed == {"a": True, "b": True, "c": False}


def test_merge_weighs_votes_by_learned_reliability() -> None:
    with ModelFleet({"weak-1": ModelBehaviour(answer="Lyon"),
                     "weak-2": ModelBehaviour(answer="Lyon"),
                     "trusted": ModelBehaviour(answer="Paris")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"enable_early_result_processing": False})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                task = TaskType.DATA_VALIDATION.value
                for index in range(8):  # earlier requests' feedback, as learned
                    await pipeline.learning.feedback(f"old-{index}", "trusted", task, True)
                    await pipeline.learning.feedback(f"old-{index}", "weak-1", task, False)
                    await pipeline.learning.feedback(f"old-{index}", "weak-2", task, False)
                return await pipeline.answer(request(chat("Capital?"),
                                                     task_hint="data_validation"))
            finally:
                await pipeline.aclose()

        answer = run(go())
    assert answer.contributing_models == ("trusted",)
    assert answer.content is not None and answer.content.text == "Paris"


def test_invalid_answers_are_excluded_and_recorded() -> None:
    with ModelFleet({"good-1": ModelBehaviour(answer='{"city": "Paris"}'),
                     "good-2": ModelBehaviour(answer='```json\n{"city": "Paris"}\n```'),
                     "sloppy": ModelBehaviour(answer='{"town": "Paris"}'),
                     "prose": ModelBehaviour(answer="It is Paris.")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"enable_early_result_processing": False,
                                                       "validation_model_count": 4})
        body = chat("Capital?", response_format={"type": "json_schema", "json_schema": {
            "name": "city", "schema": SCHEMA}})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                answer = await pipeline.answer(request(body))
                return answer, pipeline.learning.record("data_validation", "sloppy")
            finally:
                await pipeline.aclose()

        answer, sloppy = run(go())
    assert answer.task_type is TaskType.DATA_VALIDATION
    assert set(answer.contributing_models) == {"good-1", "good-2"}
    assert answer.content is not None and answer.content.data == {"city": "Paris"}
    outcomes = {call.model: call for call in answer.calls}
    assert outcomes["sloppy"].outcome == "invalid"
    assert any("city" in failure for failure in outcomes["sloppy"].validation_failures)
    assert outcomes["prose"].outcome == "invalid"
    assert "sloppy" not in answer.confidence_scores
    assert sloppy.invalid == 1 and sloppy.calls == 1


def test_validation_switched_off_lets_every_answer_vote() -> None:
    with ModelFleet({"a": ModelBehaviour(answer="not json"),
                     "b": ModelBehaviour(answer="not json")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"validation_model_count": 2})
        body = chat("?", response_format={"type": "json_object"})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                on = await pipeline.answer(request(body, "r1"))
                off = await pipeline.answer(request(body, "r2",
                                                    live=flags(enable_validation=False)))
                return on, off
            finally:
                await pipeline.aclose()

        on, off = run(go())
    assert on.status == "failed" and "invalid" in on.reason
    assert off.ok and off.content is not None and off.content.text == "not json"


def test_the_cost_limit_is_never_exceeded() -> None:
    with ModelFleet({"cheap-1": ModelBehaviour(answer="A"),
                     "cheap-2": ModelBehaviour(answer="B"),
                     "pricey": ModelBehaviour(answer="A")}) as fleet:
        # pricey: estimate ~ (tokens in + 1024 out) * $100 / 1M > $0.10; cheap ones ~ $0.001.
        settings = fleet_settings(fleet, models={"pricey": {"cost_per_1m_tokens": 100.0},
                                                 "cheap-1": {"cost_per_1m_tokens": 1.0},
                                                 "cheap-2": {"cost_per_1m_tokens": 1.0}})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                split = await pipeline.answer(request(
                    chat("?"), "r1", task_hint="complex",
                    live=LiveSettings(cost_limit=0.01, quality_threshold=0.99)))
                nothing = await pipeline.answer(request(
                    chat("?"), "r2", live=LiveSettings(cost_limit=1e-9)))
                return split, nothing
            finally:
                await pipeline.aclose()

        split, nothing = run(go())
    assert fleet["pricey"].requests == []  # it would have settled the split: never started
    assert split.status == "low_confidence" and "cost limit" in split.reason
    assert split.cost_usd <= 0.01
    assert {call.model for call in split.calls} == {"cheap-1", "cheap-2"}
    assert nothing.status == "failed" and "cost limit" in nothing.reason
    assert not nothing.calls and len(fleet["cheap-1"].requests) == 1


def test_a_slow_model_times_out_and_is_excluded() -> None:
    with ModelFleet({"a": ModelBehaviour(answer="Paris"), "b": ModelBehaviour(answer="Paris"),
                     "stuck": ModelBehaviour(hang=True)}) as fleet:
        settings = fleet_settings(fleet, models={"stuck": {"timeout_seconds": 0.3}},
                                  orchestrator={"enable_early_result_processing": False})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(chat("?"), task_hint="data_validation"))
            finally:
                await pipeline.aclose()

        answer = run(go())
        wait_for(lambda: fleet["stuck"].requests[0].disconnected,
                 message="the stuck model to see the client leave")
    stuck = next(call for call in answer.calls if call.model == "stuck")
    assert (stuck.outcome, stuck.error_type) == ("timeout", "timeout")
    assert answer.ok and set(answer.contributing_models) == {"a", "b"}


def test_early_results_end_the_fan_out() -> None:
    with ModelFleet({"a": ModelBehaviour(answer="Paris"), "b": ModelBehaviour(answer="Paris"),
                     "stuck": ModelBehaviour(hang=True)}) as fleet:
        settings = fleet_settings(fleet)  # model_timeout_seconds stays 30

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(chat("?"), task_hint="data_validation"))
            finally:
                await pipeline.aclose()

        answer = run(go())
        wait_for(lambda: fleet["stuck"].requests and fleet["stuck"].requests[0].disconnected,
                 message="the cancelled call to reach the stuck model")
    assert answer.ok and answer.confidence >= 0.8
    assert {call.model: call.outcome for call in answer.calls}["stuck"] == "cancelled"


def test_a_failing_model_is_replaced_and_recorded() -> None:
    with ModelFleet({"down": ModelBehaviour(status=503), "garbled": ModelBehaviour(
            malformed=True), "a": ModelBehaviour(answer="Paris"),
                     "b": ModelBehaviour(answer="Paris")}) as fleet:
        # `down` and `garbled` look best at cold start (fastest, cheapest).
        settings = fleet_settings(fleet, models={
            "down": {"avg_response_time": 0.1, "cost_per_1m_tokens": 0.01},
            "garbled": {"avg_response_time": 0.1, "cost_per_1m_tokens": 0.01}},
            orchestrator={"selection": {"seed": 1, "latency_weight": 3.0}})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(chat("?"), task_hint="complex"))
            finally:
                await pipeline.aclose()

        answer = run(go())
    errors = {call.model: call.error_type for call in answer.calls if call.outcome == "error"}
    assert errors == {"down": "http_503", "garbled": "malformed_reply"}
    assert answer.ok and set(answer.contributing_models) == {"a", "b"}


def test_models_get_their_own_key_and_the_trace_never_the_clients_key(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with ModelFleet({"openai-like": ModelBehaviour(answer="Paris"),
                     "claude-like": ModelBehaviour(answer="Paris")}) as fleet:
        settings = fleet_settings(fleet, models={"claude-like": {"api": "anthropic"}},
                                  orchestrator={"simple_query_model_count": 2})
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(
                    chat("?"), trace_headers=(("traceparent", traceparent),
                                              ("authorization", "Bearer sk-client"))))
            finally:
                await pipeline.aclose()

        answer = run(go())
    openai_seen = fleet["openai-like"].requests[0]
    claude_seen = fleet["claude-like"].requests[0]
    assert openai_seen.path == "/v1/chat/completions" and claude_seen.path == "/v1/messages"
    assert openai_seen.header("authorization") == "Bearer sk-model-openai-like"
    assert claude_seen.header("x-api-key") == "sk-model-claude-like"
    assert claude_seen.header("authorization") is None
    assert openai_seen.header("traceparent") == traceparent
    assert answer.ok and set(answer.contributing_models) == {"openai-like", "claude-like"}
    assert "sk-model-" not in caplog.text and "sk-client" not in caplog.text


def test_unsupported_input_calls_no_model() -> None:
    with ModelFleet({"a": ModelBehaviour()}) as fleet:
        settings = fleet_settings(fleet)
        body = {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(body))
            finally:
                await pipeline.aclose()

        answer = run(go())
    assert answer.status == "failed" and "unsupported" in answer.reason
    assert fleet["a"].requests == []


def test_selection_and_merging_switched_off_follow_the_legacy_ways() -> None:
    with ModelFleet({"first": ModelBehaviour(answer="One", latency_ms=0),
                     "second": ModelBehaviour(answer="Two")}) as fleet:
        settings = fleet_settings(fleet, models={"first": {"avg_response_time": 30.0}},
                                  orchestrator={"simple_query_model_count": 1})
        legacy_ways = flags(enable_model_selection=False, enable_result_merging=False)

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return [await pipeline.answer(request(chat("?"), f"r{i}", live=legacy_ways))
                        for i in range(5)]
            finally:
                await pipeline.aclose()

        answers = run(go())
    # Configured order, first answer wins, no escalation: "first" every time.
    assert [a.contributing_models for a in answers] == [("first",)] * 5
    assert fleet["second"].requests == []


def test_performance_tracking_switched_off_learns_nothing() -> None:
    with ModelFleet({"a": ModelBehaviour(answer="x")}) as fleet:
        settings = fleet_settings(fleet)

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                await pipeline.answer(request(chat("?"),
                                              live=flags(enable_performance_tracking=False)))
                return pipeline.learning.records()
            finally:
                await pipeline.aclose()

        assert run(go()) == {}


def initial_picks(fleet: ModelFleet, before: dict[str, int]) -> Counter[str]:
    return Counter({model.name: len(model.requests) - before.get(model.name, 0)
                    for model in fleet})


def test_selection_shifts_after_feedback_shared_through_redis(
        redis_server: RedisServer) -> None:
    """Replica A serves requests and receives negative feedback about its favourite
    model; replica B, sharing Redis, then mostly avoids that model."""
    behaviours = {name: ModelBehaviour(answer="Paris") for name in ("fast", "steady", "other")}
    with ModelFleet(behaviours) as fleet:
        settings = fleet_settings(
            fleet, redis_url=redis_server.url, key_prefix="shift",
            models={"fast": {"avg_response_time": 0.2}},
            orchestrator={"default_quality_threshold": 0.3})

        async def go() -> tuple[Counter[str], Counter[str], dict[str, Any]]:
            client_a = aioredis.Redis.from_url(redis_server.url)
            client_b = aioredis.Redis.from_url(redis_server.url)
            replica_a = await started(settings, client_a)
            replica_b = await started(settings, client_b)
            try:
                answers = [await replica_a.answer(request(chat("Capital of France?"), f"a{i}"))
                           for i in range(30)]
                before = initial_picks(fleet, {})
                answered_by_fast = [a for a in answers
                                    if "fast" in {call.model for call in a.calls}]
                for answer in answered_by_fast[:12]:
                    await replica_a.record_feedback(answer.request_id, "fast",
                                                    TaskType.SIMPLE_QUERY, False)
                await replica_b.learning.sync()
                counts = {m.name: len(m.requests) for m in fleet}
                for i in range(30):
                    await replica_b.answer(request(chat("Capital of France?"), f"b{i}"))
                after = initial_picks(fleet, counts)
                record = replica_b.learning.record("simple_query", "fast")
                return before, after, {"feedback_incorrect": record.feedback_incorrect}
            finally:
                await replica_a.aclose()
                await replica_b.aclose()
                await client_a.aclose()
                await client_b.aclose()

        before, after, record = run(go())
    print(f"\nselection before feedback: {dict(before)}\nselection after feedback:  "
          f"{dict(after)}")
    assert record["feedback_incorrect"] == 12  # replica B sees replica A's feedback
    assert before["fast"] >= 20
    assert after["fast"] <= 6


def test_feedback_reaches_any_replica_and_only_for_answered_requests(
        redis_server: RedisServer) -> None:
    """Replica A answers; feedback sent to replica B (another admin port) finds which
    models answered through Redis; a typo'd request id or a model that did not answer
    is refused and changes nothing."""
    with ModelFleet({"a": ModelBehaviour(answer="Paris")}) as fleet:
        settings = fleet_settings(fleet, redis_url=redis_server.url, key_prefix="answered")

        async def go() -> tuple[str, list[str], int]:
            client_a = aioredis.Redis.from_url(redis_server.url)
            client_b = aioredis.Redis.from_url(redis_server.url)
            replica_a = await started(settings, client_a)
            replica_b = await started(settings, client_b)
            try:
                answer = await replica_a.answer(request(chat("Capital?"), "asked-on-a"))
                await replica_a.learning.sync()
                task = await replica_b.check_feedback("asked-on-a", "a")
                refused = []
                for request_id, model in (("asked-on-b", "a"), ("asked-on-a", "zz")):
                    try:
                        await replica_b.record_feedback(request_id, model, None, False)
                    except FeedbackRefused as exc:
                        refused.append(exc.code)
                result = await replica_b.record_feedback("asked-on-a", "a", None, False)
                assert result.value == "recorded" and answer.calls[0].outcome == "valid"
                (bucket,) = [key async for key in
                             client_a.scan_iter(match="answered:learning:answered:*")]
                ttl = await client_a.ttl(bucket)
                return task, refused, ttl
            finally:
                for closable in (replica_a, replica_b, client_a, client_b):
                    await closable.aclose()

        task, refused, ttl = run(go())
    assert task == "simple_query"
    assert refused == ["unknown_request_id", "model_did_not_answer"]
    assert 24 * 3600 < ttl <= 25 * 3600  # one hash an hour, kept as long as feedback is accepted


def test_a_model_without_its_api_key_is_never_selected(
        caplog: pytest.LogCaptureFixture) -> None:
    with ModelFleet({"keyed": ModelBehaviour(answer="Paris"),
                     "keyless": ModelBehaviour(answer="Paris")}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"enable_early_result_processing": False})
        keys = {name: key for name, key in settings.model_keys.items() if name != "keyless"}
        settings = replace(settings, model_keys=keys)
        assert settings.missing_keys() == {"keyless": "FAKE_KEY_KEYLESS"}

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return [await pipeline.answer(request(chat("Capital?"), f"k{i}",
                                                      task_hint="data_validation"))
                        for i in range(3)]
            finally:
                await pipeline.aclose()

        with caplog.at_level(logging.WARNING, logger="llm_shadow.orchestrator"):
            answers = run(go())
        assert not fleet.models["keyless"].requests
    assert all(answer.contributing_models == ("keyed",) for answer in answers)
    assert "keyless (FAKE_KEY_KEYLESS)" in caplog.text


def test_cancelling_the_request_cancels_every_model_call() -> None:
    """What a divert's first-byte deadline or a client going away does: no model call
    outlives its request."""
    import asyncio

    with ModelFleet({"stuck-1": ModelBehaviour(hang=True),
                     "stuck-2": ModelBehaviour(hang=True)}) as fleet:
        settings = fleet_settings(fleet)

        async def go() -> None:
            pipeline = await started(settings)
            try:
                task = asyncio.ensure_future(pipeline.answer(request(chat("?"),
                                                                     task_hint="complex")))
                while sum(len(m.requests) for m in fleet) < 2:
                    await asyncio.sleep(0.01)  # until both calls reached their servers
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                await pipeline.aclose()

        run(go())
        for model in fleet:
            wait_for(lambda m=model: m.requests[0].disconnected,
                     message=f"{model.name} to see the call cancelled")


def test_call_records_carry_what_telemetry_needs() -> None:
    with ModelFleet({"qwen": ModelBehaviour(answer="Paris")}) as fleet:
        settings = fleet_settings(fleet, models={"qwen": {"model_id": "qwen-max-2025",
                                                           "provider": "alibaba"}})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                return await pipeline.answer(request(chat("?"), live=LiveSettings(
                    quality_threshold=0.1)))
            finally:
                await pipeline.aclose()

        answer = run(go())
    call = answer.calls[0]
    assert (call.model, call.provider, call.api, call.host) == ("qwen", "alibaba", "openai",
                                                                 "127.0.0.1")
    assert call.port == fleet.servers["qwen"].port and call.api_model == "qwen-max-2025"
    assert call.input_tokens > 0 and call.output_tokens > 0 and call.cost_usd > 0
    assert not call.cost_estimated and call.finish_reason == "stop"
    assert call.response_id and call.response_model == "qwen-max-2025"
    assert call.ended_at >= call.started_at
    assert fleet["qwen"].bodies()[0]["model"] == "qwen-max-2025"


def test_a_configuration_reload_applies_to_the_next_request(tmp_path: Any,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    with ModelFleet({"old": ModelBehaviour(answer="old"),
                     "new": ModelBehaviour(answer="new")}) as fleet:
        first = fleet_settings(fleet, models={"new": {"enabled": False}})
        bad_policy = tmp_path / "validation.json"
        bad_policy.write_text('{"rules": [{"name": "x", "checks": {"patterns": ["("]}}]}')

        async def go() -> tuple[Any, Any]:
            pipeline = await started(first)
            try:
                before = await pipeline.answer(request(chat("?"), "r1",
                                                       live=LiveSettings(quality_threshold=0)))
                reloaded = fleet_settings(fleet, models={"old": {"enabled": False}},
                                          orchestrator={"validation_policy_file":
                                                        str(bad_policy)})
                pipeline.apply_settings(reloaded)
                after = await pipeline.answer(request(chat("?"), "r2",
                                                      live=LiveSettings(quality_threshold=0)))
                return before, after
            finally:
                await pipeline.aclose()

        before, after = run(go())
    assert before.contributing_models == ("old",) and after.contributing_models == ("new",)
    assert "validation policy not reloaded, keeping the running one" in caplog.text


def test_a_deadline_ends_the_pipeline_and_says_so() -> None:
    """Models that never answer, 30 s timeouts each: the request's deadline (here 0.3 s)
    ends the calls, no further model starts, and the answer says it ran out of time;
    every call is recorded (as a timeout at the deadline) for learning."""
    with ModelFleet({"a": ModelBehaviour(hang=True), "b": ModelBehaviour(hang=True)}) as fleet:
        settings = fleet_settings(fleet, orchestrator={"simple_query_model_count": 1})

        async def go() -> Any:
            pipeline = await started(settings)
            try:
                deadline = Deadline.after(0.3, time.monotonic())
                return await pipeline.answer(request(chat("?"), deadline=deadline))
            finally:
                await pipeline.aclose()

        answer = run(go())
        wait_for(lambda: all(r.disconnected for m in fleet for r in m.requests),
                 message="the calls ended")
    assert answer.status == "failed" and answer.out_of_time
    assert [(call.outcome, call.error_type) for call in answer.calls] == [
        ("timeout", "deadline")]
    assert sum(len(model.requests) for model in fleet) == 1
