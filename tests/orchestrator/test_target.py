"""The seam shadow and divert call, with the built-in pipeline behind it: it answers only
the two chat dialects, hands the pipeline what the client asked (task hint, live
settings, trace context, content capture), renders the answer in the client's wire
format, and turns a pipeline that could not answer into `OrchestratorFailed` with the
pipeline's reason. The pipeline is real; its model calls are an in-process script
(test_pipeline drives the HTTP callers against fake model servers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
import pytest

from proxy.apis import Api
from proxy.config.orchestrator import FeatureFlags, OrchestratorSection
from proxy.orchestrator.content import Content, Usage
from proxy.orchestrator.learning import Learning
from proxy.orchestrator.pipeline import Pipeline
from proxy.orchestrator.registry import AIModel, ModelRegistry
from proxy.orchestrator.request import LiveSettings, ModelRequest
from proxy.orchestrator.target import InProcessTarget, OrchestratorFailed, TargetCall
from proxy.orchestrator.wire import Reply
from tests.fakes.records import destination

T = TypeVar("T")
OPENAI = b"/openai/v1/chat/completions"
ANTHROPIC = b"/anthropic/v1/messages"
TRACEPARENT = (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(30):
            return await make()
    return asyncio.run(main())


class Models:
    """Every model answers `answers[name]` (an exception is raised); records what each
    was asked."""

    def __init__(self, **answers: object):
        self.answers = answers
        self.asked: list[tuple[str, ModelRequest]] = []

    async def __call__(self, model: AIModel, request: ModelRequest) -> Reply:
        self.asked.append((model.name, request))
        answer = self.answers[model.name]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, str)
        return Reply(Content(answer), usage=Usage(10, 2), finish_reason="stop")


def target_for(calls: Models, *models: AIModel, **settings: Any) -> InProcessTarget:
    section = OrchestratorSection.model_validate({"enable_early_result_processing": False,
                                                  **settings})
    registry = ModelRegistry(models or [AIModel(name) for name in calls.answers])
    return InProcessTarget(Pipeline(section, registry, Learning(), calls))


def call_for(path: bytes = OPENAI, body: Any = None, **fields: Any) -> TargetCall:
    where = destination(path, provider="anthropic" if path == ANTHROPIC else "openai")
    if body is None:
        body = {"model": "m", "max_tokens": 50,
                "messages": [{"role": "user", "content": "Capital of France?"}]}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    payload = body if isinstance(body, dict) else None
    values: dict[str, Any] = {"role": "shadow", "destination": where, "method": "POST",
                              "body": raw, "payload": payload, "request_id": "r1",
                              "client_headers": [(b"authorization", b"Bearer sk-client")],
                              "live": LiveSettings(quality_threshold=0.0)}
    return TargetCall(**{**values, **fields})


async def joined(parts: AsyncIterator[bytes]) -> bytes:
    return b"".join([part async for part in parts])


@pytest.mark.parametrize(("api", "supported"), [
    ("openai_chat", True), ("anthropic_messages", True), ("openai_responses", False),
    ("openai_embeddings", False), (None, False)])
def test_only_the_two_chat_dialects_are_supported(api: Api | None, supported: bool) -> None:
    assert target_for(Models(a="x")).supports(api) is supported


@pytest.mark.parametrize("call", [
    call_for(b"/openai/v1/embeddings", {"model": "e", "input": "x"}),
    call_for(b"/openai/v1/responses", {"model": "m", "input": "x"}),
    call_for(body=b"not json"),
], ids=["embeddings", "responses", "body not JSON"])
def test_what_it_cannot_answer_fails_before_any_model_is_called(call: TargetCall) -> None:
    models = Models(a="Paris")
    with pytest.raises(OrchestratorFailed) as caught:
        run(lambda: target_for(models).call(call))
    assert caught.value.reason == "unsupported_endpoint" and caught.value.answer is None
    assert models.asked == []


def test_an_openai_answer() -> None:
    async def go() -> None:
        reply = await target_for(Models(a="Paris")).call(call_for())
        assert reply.status == 200
        assert (b"content-type", b"application/json") in reply.headers
        body = orjson.loads(await joined(reply.parts))
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == "Paris"
        assert reply.answer is not None and reply.answer.contributing_models == ("a",)
    run(go)


def test_an_anthropic_answer() -> None:
    async def go() -> None:
        body = {"model": "claude", "max_tokens": 50,
                "messages": [{"role": "user", "content": "Capital of France?"}]}
        reply = await target_for(Models(a="Paris")).call(call_for(ANTHROPIC, body))
        answer = orjson.loads(await joined(reply.parts))
        assert answer["type"] == "message"
        assert answer["content"] == [{"type": "text", "text": "Paris"}]
    run(go)


def test_a_streamed_request_gets_an_event_stream() -> None:
    async def go() -> None:
        body = {"model": "m", "stream": True,
                "messages": [{"role": "user", "content": "Capital of France?"}]}
        reply = await target_for(Models(a="Paris")).call(call_for(body=body))
        assert dict(reply.headers)[b"content-type"].startswith(b"text/event-stream")
        parts = [part async for part in reply.parts]
        assert len(parts) > 1  # one part per event, sent as they come
        assert parts[-1] == b"data: [DONE]\n\n"
        assert b'"Paris"' in b"".join(parts)
    run(go)


def test_a_pipeline_without_a_valid_answer_fails_with_its_reason() -> None:
    models = Models(a=RuntimeError("boom"))
    with pytest.raises(OrchestratorFailed) as caught:
        run(lambda: target_for(models).call(call_for()))
    assert caught.value.reason == "failed:no valid answer: a: error (RuntimeError)"
    assert caught.value.answer is not None and caught.value.answer.status == "failed"


def test_low_confidence_is_its_own_reason() -> None:
    models = Models(a="Paris", b="Lyon")
    call = call_for(live=LiveSettings(quality_threshold=0.99))
    with pytest.raises(OrchestratorFailed) as caught:
        run(lambda: target_for(models).call(call))
    assert caught.value.reason == "low_confidence"
    assert caught.value.answer is not None and len(caught.value.answer.calls) == 2


def test_the_pipeline_gets_the_hint_live_settings_and_trace_context() -> None:
    models = Models(a="Paris", b="Paris", c="Paris")
    call = call_for(task_hint="data_validation", trace_headers=[TRACEPARENT],
                    live=LiveSettings(quality_threshold=0.0,
                                      feature_flags=FeatureFlags(enable_model_selection=False,
                                                                 enable_parallel_execution=False)))
    reply = run(lambda: target_for(models).call(call))
    assert [name for name, _ in models.asked] == ["a", "b", "c"]  # the hint's count, in order
    asked = models.asked[0][1]
    assert asked.trace_headers == (("traceparent", TRACEPARENT[1].decode()),)
    assert asked.request_id == "r1" and asked.prompt == "Capital of France?"
    assert reply.answer is not None and reply.answer.task_type.value == "data_validation"


def test_the_live_cost_limit_holds() -> None:
    models = Models(pricey="Paris")
    target = target_for(models, AIModel("pricey", cost_per_1m_tokens=1e6))
    call = call_for(live=LiveSettings(quality_threshold=0.0, cost_limit=0.01))
    with pytest.raises(OrchestratorFailed) as caught:
        run(lambda: target.call(call))
    assert caught.value.reason.startswith("failed:cost limit $0.010000")
    assert models.asked == []


def test_answers_are_kept_only_with_content_capture() -> None:
    plain = run(lambda: target_for(Models(a="Paris")).call(call_for()))
    captured = run(lambda: target_for(Models(a="Paris")).call(
        call_for(capture_content=True)))
    assert plain.answer is not None and plain.answer.calls[0].output_text is None
    assert captured.answer is not None and captured.answer.calls[0].output_text == "Paris"
