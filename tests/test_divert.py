"""The divert's own rule, driven in-process through `Diverter.serve` with real parts (the
legacy upstream faked at the transport seam): whatever goes wrong in the orchestrator
before the first byte, here a bug that raises or an attempt past its time budget, is a
fallback reason and the client gets the legacy answer, never a 500; a stream cut after
its first byte is aborted and accounted for."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from proxy.comparison import DivergencePolicy, Limits
from proxy.config.shadow import DivertSection
from proxy.divert import Diverter
from proxy.exchange import Exchange
from proxy.forward import Forwarder, UpstreamAborted
from proxy.orchestrator.target import TargetCall
from proxy.recording.comparer import Comparer
from proxy.shadow.runner import ShadowRunner
from proxy.transport import PoolGate
from proxy.usage.prices import PriceTable
from tests.fakes.records import exchange, memory_budget, quiet_telemetry, target_call

LEGACY_ANSWER = b'{"choices": [{"message": {"content": "from legacy"}}]}'


class Buggy:
    name = "buggy"

    def supports(self, api: object) -> bool:
        return True

    async def call(self, call: TargetCall, deadline: Any = None) -> Any:
        raise ValueError("a bug in the pipeline")


def _legacy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "application/json"},
                          stream=httpx.ByteStream(LEGACY_ANSWER))


async def _serve(record: Exchange) -> list[dict[str, Any]]:
    telemetry = quiet_telemetry()
    comparer = Comparer(DivergencePolicy(), Limits(), telemetry, None)
    prices = PriceTable.from_sections({})
    shadow = ShadowRunner(target=Buggy(), replay=None, budget=memory_budget(1.0),  # type: ignore[arg-type]
                          comparer=comparer, telemetry=telemetry, prices=prices,
                          max_concurrency=4, timeout=5, reserve_usd=0.0, noise_percent=0,
                          cap=1 << 20)
    diverter = Diverter(target=Buggy(), legacy=Forwarder(httpx.MockTransport(_legacy),
                                                         PoolGate(4)),
                        shadow=shadow, comparer=comparer, telemetry=telemetry,
                        settings=DivertSection(), prices=prices, tee_bytes=1 << 20)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await diverter.serve(target_call("divert", record.destination), send, record, None)
    await shadow.aclose()
    return sent


def test_an_unexpected_orchestrator_error_falls_back_to_legacy_with_a_reason() -> None:
    record = exchange()
    sent = asyncio.run(_serve(record))
    assert record.fallback_reason == "error"
    assert record.answered_by == "legacy"
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == LEGACY_ANSWER


class Hanging(Buggy):
    async def call(self, call: TargetCall, deadline: Any = None) -> Any:
        await asyncio.Event().wait()


class CutAfterFirstPart(Buggy):
    async def call(self, call: TargetCall, deadline: Any = None) -> Any:
        from proxy.errors import UpstreamFailed
        from proxy.orchestrator.target import TargetReply

        async def parts() -> Any:
            yield b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
            raise UpstreamFailed("orchestrator closed the connection")

        return TargetReply(200, [(b"content-type", b"text/event-stream")], parts())


def _diverter(target: Any, settings: DivertSection) -> tuple[Diverter, ShadowRunner]:
    telemetry = quiet_telemetry()
    comparer = Comparer(DivergencePolicy(), Limits(), telemetry, None)
    prices = PriceTable.from_sections({})
    shadow = ShadowRunner(target=target, replay=None, budget=memory_budget(1.0),  # type: ignore[arg-type]
                          comparer=comparer, telemetry=telemetry, prices=prices,
                          max_concurrency=4, timeout=5, reserve_usd=0.0, noise_percent=0,
                          cap=1 << 20)
    diverter = Diverter(target=target, legacy=Forwarder(httpx.MockTransport(_legacy),
                                                        PoolGate(4)),
                        shadow=shadow, comparer=comparer, telemetry=telemetry,
                        settings=settings, prices=prices, tee_bytes=1 << 20)
    return diverter, shadow


def test_past_the_budget_legacy_answers_and_the_reason_names_the_budget() -> None:
    record = exchange()
    sent: list[dict[str, Any]] = []

    async def go() -> Diverter:
        diverter, shadow = _diverter(Hanging(), DivertSection(fallback_after_seconds=0.05,
                                                              shadow_legacy=False))

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await diverter.serve(target_call("divert", record.destination), send, record, None)
        await shadow.aclose()
        return diverter

    diverter = asyncio.run(go())
    assert record.fallback_reason == "fallback_budget"
    assert diverter.fallbacks == {"fallback_budget": 1}
    assert b"".join(m.get("body", b"") for m in sent[1:]) == LEGACY_ANSWER


def test_a_stream_cut_after_its_first_byte_is_aborted_and_accounted_for() -> None:
    record = exchange()
    sent: list[dict[str, Any]] = []

    async def go() -> Diverter:
        diverter, shadow = _diverter(CutAfterFirstPart(), DivertSection(shadow_legacy=False))

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        call = target_call("divert", record.destination, payload={"stream": True})
        with pytest.raises(UpstreamAborted):
            await diverter.serve(call, send, record, None)
        await shadow.aclose()
        return diverter

    diverter = asyncio.run(go())
    assert diverter.cuts == {"incomplete": 1}
    assert record.cut_reason == "incomplete" and record.aborted
    assert record.fallback_reason is None and record.answered_by == "orchestrator"
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


def _pipeline_answer() -> Any:
    from proxy.orchestrator.result import CallRecord, OrchestratorAnswer

    call = CallRecord(model="m1", provider="openai", api="openai_chat", host="m1.invalid",
                      started_at=1.0, ended_at=1.5, outcome="valid", cost_usd=0.02)
    return OrchestratorAnswer("ok", "", "r1", "general", calls=(call,),
                              contributing_models=("m1",))


class AnsweredThenFailed(Buggy):
    """The in-process pipeline answered (its model calls billed); what it hands the divert
    then fails the commit check: not JSON, too large, or cut short."""

    def __init__(self, failure: str):
        self.failure = failure

    async def call(self, call: TargetCall, deadline: Any = None) -> Any:
        from proxy.errors import UpstreamFailed
        from proxy.orchestrator.target import TargetReply

        async def parts() -> Any:
            if self.failure == "too_large":
                yield b'{"x": "' + b"a" * 200 + b'"}'
            elif self.failure == "invalid_json":
                yield b'{"choices": ['
            else:
                yield b'{"choices": ['
                raise UpstreamFailed("the answer's body failed midway")

        return TargetReply(200, [(b"content-type", b"application/json")], parts(),
                           answer=_pipeline_answer())


@pytest.mark.parametrize("failure", ["invalid_json", "too_large", "incomplete"])
def test_an_answer_failing_the_commit_check_keeps_its_model_calls_and_cost(
        failure: str) -> None:
    from proxy.report.buffer import ReportBuffer
    from tests.fakes.records import destination

    record = exchange(destination(max_body_bytes=100))
    report = ReportBuffer(sink=None)  # type: ignore[arg-type]  # never flushed here

    async def go() -> None:
        diverter, shadow = _diverter(AnsweredThenFailed(failure),
                                     DivertSection(shadow_legacy=False))
        diverter.comparer.report = report

        async def send(message: dict[str, Any]) -> None:
            return None

        await diverter.serve(target_call("divert", record.destination), send, record, None)
        await shadow.aclose()

    asyncio.run(go())
    assert record.fallback_reason == failure and record.answered_by == "legacy"
    [entry] = [e for e in report.pending if e.divert]
    assert entry.fallback
    assert [(use.model, use.usd) for use in entry.models] == [("m1", 0.02)]
    assert [(cost.role, cost.usd) for cost in entry.costs] == [("orchestrator", 0.02)]
