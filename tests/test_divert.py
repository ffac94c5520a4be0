"""The divert's own rule, driven in-process through `Diverter.serve` with real parts (the
legacy upstream faked at the transport seam): whatever goes wrong in the orchestrator
before the first byte, here a bug that raises, is a fallback reason and the client gets
the legacy answer, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from proxy.comparison import DivergencePolicy, Limits
from proxy.config.shadow import DivertSection
from proxy.divert import Diverter
from proxy.exchange import Exchange
from proxy.forward import Forwarder
from proxy.orchestrator.target import TargetCall
from proxy.recording.comparer import Comparer
from proxy.shadow.budget import MemoryBudget
from proxy.shadow.runner import ShadowRunner
from proxy.transport import PoolGate
from proxy.usage.prices import PriceTable
from tests.fakes.records import exchange, quiet_telemetry, target_call

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
    shadow = ShadowRunner(target=Buggy(), replay=None, budget=MemoryBudget(1.0),  # type: ignore[arg-type]
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
