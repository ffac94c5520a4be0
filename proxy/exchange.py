"""What happened to one proxied request, and the answers it is compared on.

Layer: pure core. The handler fills an `Exchange` along the request path with plain
attribute writes (cheap); it is read only after the response is complete, off the request
path, by the recording worker. `Captured` is the one shape of a complete (or capped)
answer with its timings: the legacy answer as the client got it, an orchestrator's
answer, a background legacy call; usage, cost and comparison read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxy.decision import Decision
from proxy.flags.view import FlagView
from proxy.headers import RawHeaders
from proxy.routing import Destination

if TYPE_CHECKING:  # the telemetry adapter's handle; this module stays importable without it
    from proxy.telemetry.recorder import RequestTrace


@dataclass(frozen=True, slots=True)
class Captured:
    """A complete (or capped) HTTP answer and its timings, for comparison and usage.
    `completed` is False when the answer was cut short (an aborted stream, a client that
    went away): such an answer is priced but never compared."""

    status: int
    headers: RawHeaders
    body: bytes
    truncated: bool
    started: float
    first_byte: float | None
    finished: float
    completed: bool = True

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    @property
    def duration(self) -> float:
        return self.finished - self.started


@dataclass(slots=True)
class Exchange:
    """One request: who decided what (`decision`, on the flag `view` it read), where it
    went, and what the client got. `trace` is the request's SERVER span, started and
    ended by the handler; the recording worker only hangs child spans under it."""

    request_id: str
    method: str
    destination: Destination
    started_at: float
    decision: Decision
    view: FlagView
    trace: RequestTrace
    # Eligible endpoints (LLM calls) keep bounded copies of the request and the answer.
    eligible: bool = False
    shadow_skip: str | None = None
    status: int | None = None
    first_byte_at: float | None = None
    finished_at: float | None = None
    error_type: str | None = None
    completed: bool = False
    aborted: bool = False
    client_gone: bool = False
    request_body: bytes | None = None
    response_headers: RawHeaders = field(default_factory=list)
    response_body: bytes | None = None
    response_truncated: bool = False
    answered_by: str = "legacy"
    fallback_reason: str | None = None
    # A diverted stream the orchestrator failed after its first byte went out.
    cut_reason: str | None = None

    def legacy_answer(self) -> Captured | None:
        """The legacy answer as the client got it (the teed copy), when there is one."""
        if self.status is None or self.answered_by != "legacy" or self.response_body is None:
            return None
        finished = self.finished_at if self.finished_at is not None else self.started_at
        return Captured(self.status, self.response_headers, self.response_body,
                        self.response_truncated, self.started_at, self.first_byte_at,
                        finished, completed=self.completed and not self.aborted)
