"""What comes out of the orchestrator: the merged answer, its confidence, and one record
per model call for telemetry and learning.

Layer: pure core. A divert uses `status`: `ok` is served; `low_confidence` and `failed`
fall back to legacy (the reason says why). Call records carry what the GenAI telemetry
conventions need (model, provider, server address, times, tokens, cost, error type,
finish reason) and never a prompt, an answer or a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.content import Content, Usage
from proxy.orchestrator.learned import Outcome

Status = Literal["ok", "low_confidence", "failed"]


@dataclass(frozen=True)
class CallRecord:
    model: str
    provider: str
    api: str
    host: str
    started_at: float  # epoch seconds
    ended_at: float  # epoch seconds
    outcome: Outcome
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_estimated: bool = False
    error_type: str | None = None
    finish_reason: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    validation_failures: tuple[str, ...] = ()
    agreed: bool | None = None
    # The model's answer text, only when telemetry captures message content.
    output_text: str | None = None
    port: int | None = None
    api_model: str | None = None  # the model id sent in the request (gen_ai.request.model)

    @property
    def duration(self) -> float:
        return max(0.0, self.ended_at - self.started_at)


@dataclass(frozen=True)
class OrchestratorAnswer:
    status: Status
    reason: str
    request_id: str
    task_type: TaskType
    task_reason: str = ""
    content: Content | None = None
    contributing_models: tuple[str, ...] = ()
    confidence: float = 0.0
    confidence_scores: Mapping[str, float] = field(default_factory=dict)
    calls: tuple[CallRecord, ...] = ()
    finish_reason: str | None = None
    requested_model: str | None = None
    include_usage: bool = False
    created: int = 0
    # Not `ok` because a deadline (a divert's time budget) ended it.
    out_of_time: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.calls)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + Usage(call.input_tokens, call.output_tokens)
        return total
