"""What goes into the orchestrator: the proxy's `OrchestratorRequest` (a client's parsed
body plus the live settings from the flag snapshot) and the `ModelRequest` each model
caller receives.

Layer: pure core. These are the seams between the proxy (lead), the pipeline and the
model callers, including the guide's `model_call_func(model, request)`: `request` is a
`ModelRequest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.apis import WireFormat
from proxy.config.orchestrator import FeatureFlags
from proxy.deadline import Deadline
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.conversation import Conversation
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.wire import anthropic_request, openai_request


@dataclass(frozen=True)
class LiveSettings:
    """The parts of the live flag snapshot the orchestrator obeys, per request: the
    guide's `orchestrator` defaults and its five feature flags. `None` means "use the
    configuration's default"."""

    quality_threshold: float | None = None
    cost_limit: float | None = None
    feature_flags: FeatureFlags = field(default_factory=FeatureFlags)

    @classmethod
    def from_snapshot(cls, snapshot: Any) -> LiveSettings:
        """From a flag snapshot (`FlagWatcher.current.snapshot`): its `orchestrator`
        defaults and `feature_flags`."""
        return cls(snapshot.orchestrator.default_quality_threshold,
                   snapshot.orchestrator.default_cost_limit, snapshot.feature_flags)


@dataclass(frozen=True)
class OrchestratorRequest:
    """One request for the in-process pipeline.

    `body` is the client's parsed JSON body in `wire_format`; `task_hint` is the value of
    the task hint header (if any); `trace_headers` (W3C `traceparent`, `tracestate`) go
    on every model call. `data_type` selects data-type validation rules (the legacy
    API's `data_type`). `deadline` (monotonic) caps every model call: the divert's one
    time budget, or the shadow's deadline."""

    body: Mapping[str, Any]
    wire_format: WireFormat
    request_id: str
    stream: bool = False
    task_hint: str | None = None
    live: LiveSettings = field(default_factory=LiveSettings)
    trace_headers: tuple[tuple[str, str], ...] = ()
    data_type: str | None = None
    # Telemetry opted in to message content: call records then carry each answer's text.
    capture_content: bool = False
    deadline: Deadline | None = None


@dataclass(frozen=True)
class ModelRequest:
    """What one model is asked: the conversation, the task type and the output bound.

    The guide's `model_call_func(model, request)` receives this; `prompt` is the last
    user message, `openai_body(model)` / `anthropic_body(model)` are ready-made request
    bodies for the two APIs."""

    request_id: str
    task_type: TaskType
    conversation: Conversation
    max_tokens: int
    trace_headers: tuple[tuple[str, str], ...] = ()
    data_type: str | None = None

    @property
    def prompt(self) -> str:
        return self.conversation.last_user_text()

    @property
    def system(self) -> str:
        return self.conversation.system

    @property
    def structured(self) -> bool:
        return self.conversation.output.structured

    def openai_body(self, model: AIModel) -> dict[str, Any]:
        return openai_request(self.conversation, model, self.max_tokens)

    def anthropic_body(self, model: AIModel) -> dict[str, Any]:
        return anthropic_request(self.conversation, model, self.max_tokens)
