"""The orchestration of one request through `Engine.run`, with the model calls made by an
in-process script instead of HTTP (the pipeline's HTTP callers are tested on real
sockets in test_pipeline): how many models start, in which order, when early agreement
ends the fan-out, when one more model is added, what the cost limit forbids, how
failures count, and what is learned.

Concurrency is proven by a rendezvous only a concurrent fan-out can fill; nothing waits
for time to pass (the one timeout is a model that never answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from proxy.config.orchestrator import FeatureFlags, OrchestratorSection
from proxy.orchestrator.classification import Classification, TaskType
from proxy.orchestrator.content import Content, Usage
from proxy.orchestrator.conversation import parse_request
from proxy.orchestrator.engine import Engine, Job
from proxy.orchestrator.learning import Learning
from proxy.orchestrator.registry import AIModel, ModelRegistry
from proxy.orchestrator.request import ModelRequest
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.orchestrator.validation import DEFAULT_POLICY
from proxy.orchestrator.wire import Reply

T = TypeVar("T")
NEVER = object()  # a model that never answers


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(30):  # a hung orchestration fails instead of hanging
            return await make()
    return asyncio.run(main())


@dataclass
class Models:
    """The model calls, scripted per model: a text answer, an exception to raise, or
    NEVER; `rendezvous` holds every answer until that many calls are running at once."""

    script: dict[str, object]
    rendezvous: int = 0
    started: list[str] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    cancelled: list[str] = field(default_factory=list)
    asked: list[ModelRequest] = field(default_factory=list)
    usage: Usage | None = field(default_factory=lambda: Usage(100, 20))
    _all_in: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, model: AIModel, request: ModelRequest) -> Reply:
        self.started.append(model.name)
        self.asked.append(request)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.running >= self.rendezvous:
                self._all_in.set()
            await self._all_in.wait()
            behaviour = self.script[model.name]
            if behaviour is NEVER:
                await asyncio.Event().wait()
            if isinstance(behaviour, Exception):
                raise behaviour
            assert isinstance(behaviour, str)
            return Reply(Content(behaviour), usage=self.usage, finish_reason="stop",
                         response_model=model.name + "-v1")
        except asyncio.CancelledError:
            self.cancelled.append(model.name)
            raise
        finally:
            self.running -= 1


def engine_for(*models: AIModel, learning: Learning | None = None,
               **settings: Any) -> Engine:
    section = OrchestratorSection.model_validate(
        {"enable_early_result_processing": False, **settings})
    return Engine(ModelRegistry(models), learning or Learning(), lambda: DEFAULT_POLICY,
                  section)


def job(prompt: str = "Capital of France?", *, task: TaskType = TaskType.SIMPLE_QUERY,
        threshold: float = 0.8, cost_limit: float | None = None, body: Any = None,
        **flags: bool) -> Job:
    conversation = parse_request(body or {"model": "m", "max_tokens": 100,
                                          "messages": [{"role": "user", "content": prompt}]},
                                 "openai_chat")
    return Job("req-1", conversation, Classification(task, "test"), threshold, cost_limit,
               flags=FeatureFlags(enable_model_selection=False, **flags))


def models(*names: str, **fields: Any) -> list[AIModel]:
    return [AIModel(name, **fields) for name in names]


def answer_of(engine: Engine, work: Job, calls: Models) -> OrchestratorAnswer:
    return run(lambda: engine.run(work, calls))


# --- how many start, in which order -------------------------------------------------

@pytest.mark.parametrize(("task", "count"), [
    (TaskType.SIMPLE_QUERY, 1), (TaskType.COMPLEX_REASONING, 2),
    (TaskType.DATA_VALIDATION, 3)])
def test_the_task_type_sets_how_many_models_start(task: TaskType, count: int) -> None:
    calls = Models(dict.fromkeys("abcd", "Paris"))
    answer = answer_of(engine_for(*models("a", "b", "c", "d")),
                       job(task=task, threshold=0.0), calls)
    assert calls.started == ["a", "b", "c", "d"][:count]  # the configured order
    assert answer.ok and len(answer.calls) == count


def test_the_counts_come_from_the_settings() -> None:
    calls = Models(dict.fromkeys("abcd", "Paris"))
    answer_of(engine_for(*models("a", "b", "c", "d"), simple_query_model_count=2),
              job(threshold=0.0), calls)
    assert calls.started == ["a", "b"]


def test_the_first_models_run_in_parallel() -> None:
    calls = Models(dict.fromkeys("abc", "Paris"), rendezvous=3)
    answer = answer_of(engine_for(*models("a", "b", "c")),
                       job(task=TaskType.DATA_VALIDATION, threshold=0.0), calls)
    assert calls.most_running == 3  # the rendezvous was filled: all three at once
    assert set(answer.contributing_models) == {"a", "b", "c"}


def test_without_parallel_execution_one_runs_at_a_time_in_order() -> None:
    calls = Models(dict.fromkeys("abc", "Paris"))
    answer_of(engine_for(*models("a", "b", "c")),
              job(task=TaskType.DATA_VALIDATION, threshold=0.0,
                  enable_parallel_execution=False), calls)
    assert calls.started == ["a", "b", "c"] and calls.most_running == 1


def test_every_model_is_asked_the_same_bounded_request() -> None:
    calls = Models(dict.fromkeys("ab", "Paris"))
    answer_of(engine_for(*models("a", "b")),
              job(task=TaskType.COMPLEX_REASONING, threshold=0.0), calls)
    assert {request.prompt for request in calls.asked} == {"Capital of France?"}
    assert {request.max_tokens for request in calls.asked} == {100}
    assert {request.task_type for request in calls.asked} == {TaskType.COMPLEX_REASONING}


def test_without_max_tokens_the_assumed_output_bounds_the_request() -> None:
    calls = Models({"a": "Paris"})
    body = {"model": "m", "messages": [{"role": "user", "content": "Capital?"}]}
    answer_of(engine_for(*models("a"), assumed_output_tokens=321),
              job(threshold=0.0, body=body), calls)
    assert calls.asked[0].max_tokens == 321


# --- early agreement, escalation ------------------------------------------------------

def test_early_agreement_cancels_the_calls_still_running() -> None:
    """Two agreeing answers reach the threshold; the third model, still thinking, is
    cancelled and recorded as such."""
    calls = Models({"a": "Paris", "b": "Paris", "c": NEVER})
    answer = answer_of(engine_for(*models("a", "b", "c"),
                                  enable_early_result_processing=True),
                       job(task=TaskType.DATA_VALIDATION), calls)
    assert answer.ok and answer.contributing_models == ("a", "b")
    assert calls.cancelled == ["c"]
    outcomes = {record.model: record.outcome for record in answer.calls}
    assert outcomes == {"a": "valid", "b": "valid", "c": "cancelled"}


def test_one_more_model_at_a_time_below_the_threshold() -> None:
    """One answer alone has its model's reliability (0.5 for a new model), below 0.8;
    a second that agrees lifts the merged confidence above it, and no third starts."""
    calls = Models(dict.fromkeys("abc", "Paris"))
    answer = answer_of(engine_for(*models("a", "b", "c")), job(threshold=0.8), calls)
    assert calls.started == ["a", "b"] and calls.most_running == 1
    assert answer.ok and answer.confidence >= 0.8
    assert set(answer.contributing_models) == {"a", "b"}


def test_escalation_stops_at_max_model_count() -> None:
    calls = Models({"a": "Paris", "b": "Lyon", "c": "Nice", "d": "Lille", "e": "Metz"})
    answer = answer_of(engine_for(*models("a", "b", "c", "d", "e"), max_model_count=3),
                       job(threshold=0.8), calls)
    assert calls.started == ["a", "b", "c"]
    assert answer.status == "low_confidence"
    assert "below the quality threshold" in answer.reason
    assert "max_model_count 3" in answer.reason


def test_escalation_stops_when_no_model_is_left() -> None:
    calls = Models({"a": "Paris", "b": "Lyon"})
    answer = answer_of(engine_for(*models("a", "b")), job(threshold=0.99), calls)
    assert calls.started == ["a", "b"]
    assert answer.status == "low_confidence" and "no more models" in answer.reason


def test_without_merging_the_first_valid_answer_wins_and_nothing_is_added() -> None:
    calls = Models({"a": "Paris", "b": "Lyon"})
    answer = answer_of(engine_for(*models("a", "b")),
                       job(threshold=0.0, enable_result_merging=False), calls)
    assert calls.started == ["a"]
    assert answer.content == Content("Paris")


# --- the cost limit -------------------------------------------------------------------

EXPENSIVE: dict[str, Any] = {"cost_per_1m_tokens": 10_000.0}  # 100 output tokens alone cost $1


def test_a_call_that_would_exceed_the_cost_limit_is_never_started() -> None:
    calls = Models({"cheap": "Paris", "pricey": "Paris"})
    answer = answer_of(engine_for(AIModel("cheap", cost_per_1m_tokens=1.0),
                                  AIModel("pricey", **EXPENSIVE)),
                       job(threshold=0.8, cost_limit=0.5), calls)
    assert calls.started == ["cheap"]
    assert answer.status == "low_confidence"
    assert "cost limit $0.500000 reached" in answer.reason
    assert answer.cost_usd <= 0.5


def test_nothing_fits_the_cost_limit_is_a_failure_without_calls() -> None:
    calls = Models({"pricey": "Paris"})
    answer = answer_of(engine_for(AIModel("pricey", **EXPENSIVE)),
                       job(threshold=0.0, cost_limit=0.5), calls)
    assert calls.started == []
    assert answer.status == "failed" and answer.reason.startswith("cost limit $0.500000")


def test_the_first_models_together_fit_the_limit() -> None:
    """Three start for data validation only if their estimates fit together; the ones
    that do not fit are skipped, not started."""
    calls = Models(dict.fromkeys("abc", "Paris"))
    per_call: dict[str, Any] = {"cost_per_1m_tokens": 2_000.0}  # about $0.2 each with the prompt
    answer = answer_of(engine_for(*models("a", "b", "c", **per_call)),
                       job(task=TaskType.DATA_VALIDATION, threshold=0.0, cost_limit=0.5),
                       calls)
    assert calls.started == ["a", "b"]
    assert answer.cost_usd <= 0.5


# --- failures ---------------------------------------------------------------------

def test_a_failing_model_is_excluded_and_another_answers() -> None:
    calls = Models({"a": RuntimeError("boom"), "b": "Paris"})
    answer = answer_of(engine_for(*models("a", "b")), job(threshold=0.5), calls)
    assert calls.started == ["a", "b"]
    assert answer.ok and answer.contributing_models == ("b",)
    failed = answer.calls[0]
    assert (failed.model, failed.outcome, failed.error_type) == ("a", "error", "RuntimeError")
    assert failed.cost_usd == 0.0 and failed.input_tokens == 0  # an error is not billed


def test_a_model_past_its_timeout_is_a_timeout() -> None:
    calls = Models({"slow": NEVER, "b": "Paris"})
    answer = answer_of(engine_for(AIModel("slow", timeout_seconds=0.05), AIModel("b")),
                       job(threshold=0.5), calls)
    assert calls.cancelled == ["slow"]
    outcomes = {record.model: record.outcome for record in answer.calls}
    assert outcomes == {"slow": "timeout", "b": "valid"}
    assert answer.ok


def test_no_valid_answer_is_a_failure_that_names_each_model() -> None:
    calls = Models({"a": RuntimeError("boom"), "b": ""})  # an empty answer is invalid
    answer = answer_of(engine_for(*models("a", "b")), job(threshold=0.5), calls)
    assert answer.status == "failed"
    assert answer.reason.startswith("no valid answer: ")
    assert "a: error (RuntimeError)" in answer.reason
    assert "b: invalid (" in answer.reason
    invalid = answer.calls[1]
    assert invalid.outcome == "invalid" and invalid.validation_failures


def test_without_validation_an_empty_answer_votes() -> None:
    calls = Models({"a": ""})
    answer = answer_of(engine_for(*models("a")),
                       job(threshold=0.0, enable_validation=False), calls)
    assert answer.ok and answer.calls[0].outcome == "valid"


def test_no_enabled_model_calls_nothing() -> None:
    calls = Models({"a": "Paris"})
    answer = answer_of(engine_for(AIModel("a", enabled=False)), job(), calls)
    assert answer.status == "failed" and answer.reason == "no models are enabled"
    assert calls.started == []


def test_unsupported_input_calls_nothing() -> None:
    calls = Models({"a": "Paris"})
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}
    answer = answer_of(engine_for(*models("a")), job(body=body), calls)
    assert answer.status == "failed" and answer.reason.startswith("unsupported input: ")
    assert calls.started == []


# --- records and learning -----------------------------------------------------------

def test_records_carry_usage_cost_and_agreement() -> None:
    calls = Models({"a": "Paris", "b": "Paris", "c": "Lyon"})
    answer = answer_of(engine_for(*models("a", "b", "c", cost_per_1m_tokens=1.0)),
                       job(task=TaskType.DATA_VALIDATION, threshold=0.0), calls)
    by_model = {record.model: record for record in answer.calls}
    assert (by_model["a"].input_tokens, by_model["a"].output_tokens) == (100, 20)
    assert by_model["a"].cost_usd == pytest.approx(120 / 1e6)
    assert not by_model["a"].cost_estimated
    assert by_model["a"].response_model == "a-v1" and by_model["a"].finish_reason == "stop"
    assert (by_model["a"].agreed, by_model["b"].agreed, by_model["c"].agreed) == \
        (True, True, False)
    assert answer.cost_usd == pytest.approx(3 * 120 / 1e6)
    assert answer.finish_reason == "stop"


def test_without_reported_usage_the_cost_is_estimated() -> None:
    calls = Models({"a": "Paris"}, usage=None)
    answer = answer_of(engine_for(*models("a", cost_per_1m_tokens=1.0)), job(threshold=0.0),
                       calls)
    record = answer.calls[0]
    assert record.cost_estimated and record.output_tokens > 0 and record.cost_usd > 0


def test_every_call_is_learned() -> None:
    learning = Learning()
    calls = Models({"a": "Paris", "b": "Paris", "c": RuntimeError("boom")})
    answer_of(engine_for(*models("a", "b", "c"), learning=learning),
              job(task=TaskType.DATA_VALIDATION, threshold=0.0), calls)
    task = TaskType.DATA_VALIDATION.value
    a, c = learning.record(task, "a"), learning.record(task, "c")
    assert (a.calls, a.answered, a.agreed) == (1, 1, 1)
    assert (c.calls, c.errors, c.answered) == (1, 1, 0)


def test_without_performance_tracking_nothing_is_learned() -> None:
    learning = Learning()
    calls = Models({"a": "Paris"})
    answer_of(engine_for(*models("a"), learning=learning),
              job(threshold=0.0, enable_performance_tracking=False), calls)
    assert learning.records() == {}
