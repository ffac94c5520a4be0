"""The recording worker: the request path hands it each finished exchange and goes on;
only a legacy answer of an API the proxy reads is queued, a full queue drops and counts,
and in the background each becomes a CLIENT span under the request's trace with its
usage and cost, and its cost reaches the report."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from proxy.comparison import DivergencePolicy, Limits
from proxy.config.pricing import Price
from proxy.exchange import Exchange
from proxy.recording.comparer import Comparer
from proxy.recording.worker import ExchangeRecorder
from proxy.report.buffer import ReportBuffer
from proxy.telemetry import names as n
from proxy.telemetry.recorder import Telemetry
from proxy.usage.prices import PriceTable
from tests.fakes.records import destination, exchange, quiet_telemetry
from tests.fakes.servers import RedisServer, async_wait_for
from tests.recording.conftest import report_on, run
from tests.telemetry.conftest import Memory

PRICES = PriceTable.from_sections({"gpt-4o-mini": Price(input_per_1m=1.0, output_per_1m=2.0)})
REQUEST = orjson.dumps({"model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "Say hello"}]})
ANSWER = orjson.dumps({
    "id": "chatcmpl-1", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})


def recorder_for(telemetry: Telemetry | None = None, report: ReportBuffer | None = None,
                 queue_size: int = 100) -> ExchangeRecorder:
    telemetry = telemetry or quiet_telemetry()
    comparer = Comparer(DivergencePolicy(), Limits(), telemetry, report)
    return ExchangeRecorder(telemetry, PRICES, comparer, queue_size=queue_size)


def answered(telemetry: Telemetry | None = None, path: bytes = b"/openai/v1/chat/completions",
             request_id: str = "r1", **fields: Any) -> Exchange:
    """A legacy answer the client got whole, as the handler leaves it."""
    record = exchange(destination(path, upstream="https://api.example.test"),
                      telemetry=telemetry, request_id=request_id)
    record.status = 200
    record.response_headers = [(b"content-type", b"application/json")]
    record.request_body = REQUEST
    record.response_body = ANSWER
    record.first_byte_at = record.started_at + 0.1
    record.finished_at = record.started_at + 0.2
    record.completed = True
    for name, value in fields.items():
        setattr(record, name, value)
    return record


# --- what is queued --------------------------------------------------------------------

def test_a_legacy_answer_of_a_known_api_is_queued() -> None:
    async def go() -> None:
        recorder = recorder_for()
        recorder.record(answered())
        assert recorder.queue.qsize() == 1 and recorder.dropped == 0
    run(go)


@pytest.mark.parametrize("fields", [
    {"status": None},  # refused, or failed before any answer
    {"response_body": None},  # not teed
    {"answered_by": "orchestrator"},  # the divert's own records cover it
    {"path": b"/openai/v1/models"},  # not an LLM call the proxy reads
], ids=["no answer", "no copy", "orchestrator answered", "unknown API"])
def test_anything_else_is_not_queued(fields: dict[str, Any]) -> None:
    async def go() -> None:
        recorder = recorder_for()
        recorder.record(answered(**fields))
        assert recorder.queue.qsize() == 0 and recorder.dropped == 0
    run(go)


def test_record_never_awaits() -> None:
    recorder = recorder_for()
    assert not inspect.iscoroutinefunction(recorder.record)


def test_a_full_queue_drops_and_counts() -> None:
    async def go() -> None:
        recorder = recorder_for(queue_size=2)
        for index in range(5):
            recorder.record(answered(request_id=f"r{index}"))
        assert recorder.queue.qsize() == 2 and recorder.dropped == 3
    run(go)


# --- what is recorded ------------------------------------------------------------------

def test_the_legacy_call_becomes_a_client_span_under_the_request(
        memory: Callable[..., Memory]) -> None:
    recorded = memory()
    telemetry = recorded.telemetry

    async def go() -> None:
        recorder = recorder_for(telemetry)
        recorder.start()
        record = answered(telemetry)
        telemetry.end_request(record.trace, 200, "legacy", ended_at=record.finished_at)
        recorder.record(record)
        await recorder.aclose()

    run(go)
    server, client = sorted(recorded.finished(), key=lambda span: span.kind.value)
    assert server.name == "POST /openai" and client.name == "chat gpt-4o-mini"
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    attributes = client.attributes or {}
    assert attributes[n.ROLE] == "legacy"
    assert attributes[n.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] == 500
    assert attributes[n.SERVER_ADDRESS] == "api.example.test"
    assert attributes[n.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(0.002)
    (cost,) = recorded.points(n.METRIC_COST)
    assert cost.value == pytest.approx(0.002)
    assert cost.attributes[n.ROLE] == "legacy"


def test_an_upstream_error_is_recorded_with_no_cost(memory: Callable[..., Memory]) -> None:
    recorded = memory()

    async def go() -> None:
        recorder = recorder_for(recorded.telemetry)
        recorder.start()
        recorder.record(answered(recorded.telemetry, status=429,
                                 response_body=b'{"error": {"message": "slow down"}}'))
        await recorder.aclose()

    run(go)
    (client,) = recorded.finished()
    assert (client.attributes or {})["error.type"] == "429"
    assert (client.attributes or {})[n.GEN_AI_USAGE_INPUT_TOKENS] == 0
    assert recorded.points(n.METRIC_COST) == []


@pytest.mark.integration
def test_the_legacy_cost_reaches_the_report(redis_server: RedisServer) -> None:
    async def go() -> None:
        async with report_on(redis_server.url) as report:
            recorder = recorder_for(report=report.buffer)
            recorder.start()
            for index in range(3):
                recorder.record(answered(request_id=f"r{index}"))
            await recorder.aclose()
            summary = await report.summary("/openai")
            legacy = summary.cost["legacy"]
            assert (legacy.calls, legacy.requests) == (3, 3)
            assert legacy.usd == pytest.approx(0.006)
    run(go)


def test_a_record_that_fails_does_not_stop_the_worker(memory: Callable[..., Memory]) -> None:
    """An answer whose usage cannot be parsed at all is an estimate, and one whose
    request body is not JSON still records: the worker goes on either way."""
    recorded = memory()

    async def go() -> None:
        recorder = recorder_for(recorded.telemetry)
        recorder.start()
        recorder.record(answered(recorded.telemetry, request_id="a",
                                 response_body=b"\xff not json", request_body=b"\x00"))
        recorder.record(answered(recorded.telemetry, request_id="b"))
        await recorder.aclose()

    run(go)
    assert len(recorded.finished()) == 2


# --- closing ---------------------------------------------------------------------------

def test_aclose_drains_what_was_queued_and_stops_the_worker(
        memory: Callable[..., Memory]) -> None:
    recorded = memory()

    async def go() -> None:
        recorder = recorder_for(recorded.telemetry)
        recorder.start()
        for index in range(50):
            recorder.record(answered(recorded.telemetry, request_id=f"r{index}"))
        await recorder.aclose()
        assert recorder.queue.qsize() == 0
        await async_wait_for(lambda: asyncio.all_tasks() == {asyncio.current_task()},
                             message="the worker stopped")

    run(go)
    assert len(recorded.finished()) == 50


def test_aclose_of_a_recorder_that_never_started_returns_at_once() -> None:
    async def go() -> None:
        recorder = recorder_for()
        recorder.record(answered())
        async with asyncio.timeout(5):
            await recorder.aclose(timeout=60)
    run(go)


def test_aclose_with_no_time_left_still_returns_and_stops_the_worker() -> None:
    """Shutdown whose budget is spent: whatever is written or not, the worker stops
    and closing does not wait."""
    async def go() -> None:
        recorder = recorder_for()
        recorder.start()
        for index in range(10):
            recorder.record(answered(request_id=f"r{index}"))
        async with asyncio.timeout(5):
            await recorder.aclose(timeout=0)
        await async_wait_for(lambda: asyncio.all_tasks() == {asyncio.current_task()},
                             message="the worker stopped")
    run(go)


def test_a_backlog_is_worked_off_without_stalling_the_event_loop() -> None:
    """Requests keep being served while the worker catches up: it yields between items,
    so a task that only needs the loop runs many times before the backlog is gone."""
    async def go() -> tuple[int, int]:
        recorder = recorder_for(queue_size=1000)
        for index in range(200):
            recorder.record(answered(request_id=f"r{index}"))
        turns = 0
        left_at_first_turn = -1

        async def request_path() -> None:
            nonlocal turns, left_at_first_turn
            while recorder.queue.qsize():
                if turns == 0:
                    left_at_first_turn = recorder.queue.qsize()
                turns += 1
                await asyncio.sleep(0)

        recorder.start()
        await asyncio.gather(request_path(), recorder.queue.join())
        await recorder.aclose()
        return turns, left_at_first_turn

    turns, left = asyncio.run(go())
    assert left > 100  # the worker had not worked off the backlog in one step
    assert turns > 100
