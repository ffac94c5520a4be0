"""The orchestrator as shadow and divert call it: one seam, two targets.

Layer: pure core (the seam) plus the in-process target, which only calls the pipeline it
is given. A target takes a `TargetCall` (and the attempt's `Deadline`, which the
in-process pipeline spreads over its model calls) and gives back a `TargetReply` whose
status and headers are known before any byte is sent to a client, so a divert can still
fall back to legacy when the call fails (`OrchestratorFailed`, with a reason that goes on
traces and counters). The targets:

- `InProcessTarget` (here): the built-in pipeline answers whole, then the answer is
  rendered in the client's wire format;
- `ExternalTarget` (`proxy.orchestrator.external`, over httpx): an OpenAI-compatible
  orchestrator service at `orchestrator.endpoint`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from proxy.apis import Api, wire_format
from proxy.deadline import Deadline
from proxy.headers import RawHeaders
from proxy.orchestrator.request import LiveSettings, OrchestratorRequest
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.routing import Destination

if TYPE_CHECKING:  # the pipeline is composition; this seam only calls it
    from proxy.orchestrator.pipeline import Pipeline

Role = Literal["shadow", "divert"]


class OrchestratorFailed(Exception):
    """The orchestrator could not answer before the first byte; `reason` is a code
    (timeout, deadline, error, low_confidence, failed:<why>, status_502,
    unsupported_endpoint, too_large, invalid_json, incomplete)."""

    def __init__(self, reason: str, answer: OrchestratorAnswer | None = None):
        super().__init__(reason)
        self.reason = reason
        self.answer = answer


@dataclass(frozen=True)
class TargetCall:
    """One client request as the orchestrator gets it (`role` says shadow or divert)."""

    role: Role
    destination: Destination
    method: str
    body: bytes
    payload: Mapping[str, Any] | None
    request_id: str
    client_headers: Sequence[tuple[bytes, bytes]]
    trace_headers: Sequence[tuple[bytes, bytes]] = ()
    live: LiveSettings = field(default_factory=LiveSettings)
    task_hint: str | None = None
    capture_content: bool = False

    @property
    def stream(self) -> bool:
        return bool(self.payload and self.payload.get("stream"))

    @property
    def api(self) -> Api | None:
        return self.destination.api

    @property
    def route(self) -> str:
        prefix: str = self.destination.route.prefix
        return prefix


@dataclass
class TargetReply:
    status: int
    headers: RawHeaders
    parts: AsyncIterator[bytes]
    answer: OrchestratorAnswer | None = None
    _close: Callable[[], Awaitable[None]] | None = None

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()


class Target(Protocol):
    name: str

    def supports(self, api: Api | None) -> bool: ...

    async def call(self, call: TargetCall, deadline: Deadline | None = None) -> TargetReply:
        """The orchestrator's reply; `deadline` is the attempt's whole budget (the caller
        also enforces it: a target may use it to end its own steps in time)."""
        ...


class InProcessTarget:
    """The built-in pipeline: it answers whole, then the answer is rendered in the
    client's wire format (SSE events when streaming was asked for)."""

    name = "in-process"

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def supports(self, api: Api | None) -> bool:
        return wire_format(api) is not None

    async def call(self, call: TargetCall, deadline: Deadline | None = None) -> TargetReply:
        wire = wire_format(call.api)
        if wire is None or call.payload is None:
            raise OrchestratorFailed("unsupported_endpoint")
        answer = await self.pipeline.answer(OrchestratorRequest(
            body=call.payload, wire_format=wire, request_id=call.request_id,
            stream=call.stream, task_hint=call.task_hint, live=call.live,
            capture_content=call.capture_content,
            trace_headers=tuple((k.decode("latin-1"), v.decode("latin-1"))
                                for k, v in call.trace_headers),
            deadline=deadline,
        ))
        if not answer.ok:
            raise OrchestratorFailed(_failure_reason(answer), answer)
        rendered = self.pipeline.render(answer, wire, call.stream)
        return TargetReply(rendered.status, list(rendered.headers), _iterate(rendered.parts),
                           answer=answer)


def _failure_reason(answer: OrchestratorAnswer) -> str:
    if answer.out_of_time:
        return "deadline"
    if answer.status == "low_confidence":
        return "low_confidence"
    return f"failed:{answer.reason}" if answer.reason else "failed"


async def _iterate(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
