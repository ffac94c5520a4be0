"""The divert's own rule, driven in-process: whatever goes wrong in the orchestrator
before the first byte (here, a bug that raises) is a fallback reason, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

from proxy.config.proxy import Route
from proxy.config.shadow import DivertSection
from proxy.divert import Diverter
from proxy.orchestrator.target import TargetCall
from proxy.routing import RouteTable


class Buggy:
    name = "buggy"

    def supports(self, provider: str, path: str) -> bool:
        return True

    async def call(self, call: TargetCall) -> Any:
        raise ValueError("a bug in the pipeline")


def test_an_unexpected_orchestrator_error_is_a_fallback_reason() -> None:
    diverter = Diverter(target=Buggy(), legacy=None, shadow=None,  # type: ignore[arg-type]
                        comparer=None, telemetry=None,  # type: ignore[arg-type]
                        settings=DivertSection(), prices=None,  # type: ignore[arg-type]
                        tee_bytes=1024)
    route = RouteTable([Route(prefix="/openai", upstream="https://x.invalid")]).resolve(
        b"/openai/v1/chat/completions", b"")
    call = TargetCall(role="divert", provider="openai", path="/v1/chat/completions",
                      query=b"", method="POST", body=b"{}", payload={}, request_id="r",
                      client_headers=[])
    reply, first, reason, answer = asyncio.run(diverter._open(route, call))
    assert (reply, first, reason, answer) == (None, None, "error", None)
