"""The migration guide's Python API: `AIOrchestrator`, `OrchestratorConfig`, `Response`,
and the result of `process_request`.

Layer: composition (for library users). The same engine as the proxy's pipeline
(`proxy.orchestrator.engine`); the difference is who calls the models: the user's
`model_call_func(model, request)`, an async function given the `AIModel` and a
`ModelRequest` (`request.prompt`, `request.openai_body(model)`, ...). It may return:

- a `str`: the answer text (parsed as JSON when JSON was asked for);
- a `Response(content, usage=None, confidence=None)`: `content` a string or JSON value,
  `usage` a `Usage` or a mapping with `input_tokens`/`output_tokens` (or
  `prompt_tokens`/`completion_tokens`), `confidence` in [0, 1] scaling the model's vote;
- a `dict`: an OpenAI chat completion or Anthropic message body (parsed as such), a
  mapping with `content` (like `Response`), or else the structured answer itself; an
  SDK response object is read through its `model_dump()`.

Errors as in the guide: `ValueError("No AI models available for routing")` when no
enabled model is registered, `RuntimeError("model_call_func is required")` when neither
the call nor the orchestrator has one. A model's own failure never raises: it is
excluded, recorded, and the result says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from proxy.config.orchestrator import FeatureFlags, OrchestratorSection
from proxy.orchestrator.classification import Classification, ClassifyLimits, TaskType, classify
from proxy.orchestrator.content import Usage, data_content, text_content
from proxy.orchestrator.conversation import OutputFormat, from_prompt
from proxy.orchestrator.engine import Engine, Job
from proxy.orchestrator.learned import Evidence
from proxy.orchestrator.learned_store import MemoryLearningStore, describe
from proxy.orchestrator.learning import FeedbackResult, Learning
from proxy.orchestrator.performance import Report, build_report, render_text
from proxy.orchestrator.registry import AIModel, ModelRegistry
from proxy.orchestrator.request import ModelRequest
from proxy.orchestrator.result import CallRecord, OrchestratorAnswer
from proxy.orchestrator.validation import DEFAULT_POLICY, ValidationPolicy, wants_json
from proxy.orchestrator.wire import (
    MalformedReply,
    Reply,
    parse_anthropic_reply,
    parse_openai_reply,
)

log = logging.getLogger("llm_shadow.orchestrator")

T = TypeVar("T")
ModelCallFunc = Callable[[AIModel, ModelRequest], Awaitable[Any]]

NO_MODELS = "No AI models available for routing"
NO_CALLER = "model_call_func is required"


class OrchestratorConfig(OrchestratorSection):
    """The guide's `OrchestratorConfig(simple_query_model_count=1, ...)`: the
    `orchestrator` section of `config.json`, with the same fields and defaults."""


@dataclass(frozen=True)
class Response:
    """What a `model_call_func` may return: the answer, and optionally the tokens it
    used (for cost) and the model's own confidence in it."""

    content: Any
    usage: Usage | Mapping[str, int] | None = None
    confidence: float | None = None
    model: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class ProcessResult:
    """The guide's result: `data` (None when no answer could be given),
    `contributing_models`, `confidence_scores` (each answering model's probability of
    being right), plus the overall `confidence`, `status` and `reason`."""

    data: Any
    contributing_models: list[str]
    confidence_scores: dict[str, float]
    confidence: float
    status: Literal["ok", "low_confidence", "failed"]
    reason: str
    request_id: str
    task_type: TaskType
    cost: float
    calls: tuple[CallRecord, ...] = ()
    answer: OrchestratorAnswer | None = field(default=None, repr=False)

    @property
    def success(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_answer(cls, answer: OrchestratorAnswer) -> ProcessResult:
        return cls(
            data=answer.content.value() if answer.content is not None else None,
            contributing_models=list(answer.contributing_models),
            confidence_scores=dict(answer.confidence_scores), confidence=answer.confidence,
            status=answer.status, reason=answer.reason, request_id=answer.request_id,
            task_type=answer.task_type, cost=answer.cost_usd, calls=answer.calls,
            answer=answer)


class AIOrchestrator:
    def __init__(self, config: OrchestratorSection | None = None, *,
                 model_call_func: ModelCallFunc | None = None,
                 feature_flags: FeatureFlags | None = None,
                 learning: Learning | None = None,
                 validation_policy: ValidationPolicy | None = None,
                 models: list[AIModel] | None = None, seed: int | None = None):
        self.config = config or OrchestratorConfig()
        self.feature_flags = feature_flags or FeatureFlags()
        self.model_call_func = model_call_func
        self.registry = ModelRegistry(models or ())
        self.learning = learning or Learning(
            MemoryLearningStore(self.config.learning.samples_kept),
            Evidence.from_settings(self.config.selection))
        self.learning.announce()
        self.validation_policy = validation_policy or DEFAULT_POLICY
        self._engine = Engine(self.registry, self.learning, lambda: self.validation_policy,
                              self.config, _rng(seed, self.config))

    def configure(self, config: OrchestratorSection | None = None,
                  feature_flags: FeatureFlags | None = None) -> None:
        """Switch settings and feature flags live (the next request uses them)."""
        if config is not None:
            self.config = config
            self._engine.settings = config
        if feature_flags is not None:
            self.feature_flags = feature_flags

    # --- models ------------------------------------------------------------------------

    def register_model(self, model: AIModel) -> None:
        self.registry.register(model)

    def unregister_model(self, name: str) -> None:
        self.registry.unregister(name)

    @property
    def models(self) -> list[AIModel]:
        return list(self.registry)

    # --- requests ----------------------------------------------------------------------

    async def process_request(
        self, prompt: str | None = None, *, quality_threshold: float | None = None,
        cost_limit: float | None = None, model_call_func: ModelCallFunc | None = None,
        task_type: TaskType | str | None = None, data_type: str | None = None,
        response_format: Mapping[str, Any] | None = None, system: str = "",
        max_tokens: int | None = None, request_id: str | None = None,
    ) -> ProcessResult:
        if not self.registry.enabled():
            raise ValueError(NO_MODELS)
        func = model_call_func or self.model_call_func
        if func is None:
            raise RuntimeError(NO_CALLER)
        if not prompt:
            raise ValueError("prompt is required")
        await self.learning.settle()
        conversation = from_prompt(prompt, system=system, max_tokens=max_tokens,
                                   output=self._output(response_format, data_type))
        job = Job(
            request_id=request_id or uuid.uuid4().hex,
            conversation=conversation,
            classification=self._classify(conversation, task_type),
            quality_threshold=(self.config.default_quality_threshold
                               if quality_threshold is None else quality_threshold),
            cost_limit=self.config.default_cost_limit if cost_limit is None else cost_limit,
            flags=self.feature_flags, data_type=data_type)
        answer = await self._engine.run(job, _adapt(func))
        await self.learning.sync()
        return ProcessResult.from_answer(answer)

    def _output(self, response_format: Mapping[str, Any] | None,
                data_type: str | None) -> OutputFormat:
        if response_format and response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            return OutputFormat("json_schema", spec.get("schema") or {}, spec.get("name"))
        if (response_format and response_format.get("type") == "json_object") or wants_json(
                self.validation_policy, data_type):
            return OutputFormat("json_object")
        return OutputFormat()

    def _classify(self, conversation: Any, task_type: TaskType | str | None) -> Classification:
        if task_type is not None:
            parsed = TaskType.parse(task_type)
            if parsed is None:
                raise ValueError(f"unknown task type {task_type!r}")
            return Classification(parsed, "given by the caller")
        return classify(conversation, None, ClassifyLimits(
            self.config.complex_prompt_chars, self.config.complex_message_count))

    # --- feedback ----------------------------------------------------------------------

    def record_feedback(self, request_id: str, model_name: str,
                        task_type: TaskType | str, was_correct: bool) -> bool:
        """The guide's feedback call. Outside an event loop it completes before
        returning (False if this feedback was already counted); inside one it is
        recorded in the background before the next `process_request` (use
        `await arecord_feedback(...)` for the definite result)."""
        task = _task(task_type)
        coro = self.learning.feedback(request_id, model_name, task.value, was_correct)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(_ensure(coro)) != FeedbackResult.DUPLICATE
        self.learning.spawn(coro)
        return True

    async def arecord_feedback(self, request_id: str, model_name: str,
                               task_type: TaskType | str, was_correct: bool) -> FeedbackResult:
        return await self.learning.feedback(request_id, model_name, _task(task_type).value,
                                            was_correct)

    # --- reports -----------------------------------------------------------------------

    def generate_performance_report(self, output_format: str = "text") -> str:
        """The report as text, or as a JSON document (`output_format='json'`)."""
        if output_format not in ("text", "json"):
            raise ValueError("output_format must be 'text' or 'json'")
        report = run_blocking(self.performance_report)
        if output_format == "json":
            return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode()
        return render_text(report)

    async def performance_report(self) -> Report:
        records, samples = await self.learning.read_through()
        return build_report(records, samples, self.learning.evidence,
                            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
                            store=describe(self.learning.store))

    def export_metrics(self, path: str | Path) -> Path:
        """Write the JSON report (per model and task type, anomalies included) to `path`."""
        target = Path(path)
        report = run_blocking(self.performance_report)
        target.write_bytes(orjson.dumps({"kind": "llm-shadow orchestrator metrics",
                                         **report.to_dict()}, option=orjson.OPT_INDENT_2))
        return target

    async def aclose(self) -> None:
        await self.learning.settle()
        await self.learning.sync()


def _task(task_type: TaskType | str) -> TaskType:
    parsed = TaskType.parse(task_type)
    if parsed is None:
        raise ValueError(f"unknown task type {task_type!r}; one of "
                         + ", ".join(t.value for t in TaskType))
    return parsed


def _rng(seed: int | None, config: OrchestratorSection) -> Any:
    import random

    return random.Random(seed if seed is not None else config.selection.seed)


async def _ensure(coro: Coroutine[Any, Any, T]) -> T:
    return await coro


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, inside a running loop or not (a
    private thread and loop then; only read-only work is done this way)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="orchestrator") as pool:
        return pool.submit(asyncio.run, factory()).result()


# --- what model_call_func returns ----------------------------------------------------


def _adapt(func: ModelCallFunc) -> Callable[[AIModel, ModelRequest], Awaitable[Reply]]:
    async def call(model: AIModel, request: ModelRequest) -> Reply:
        result = func(model, request)
        if inspect.isawaitable(result):
            result = await result
        return as_reply(result, request.structured)

    return call


def as_reply(result: Any, structured: bool) -> Reply:
    """Read whatever a `model_call_func` returned (see the module docstring)."""
    if isinstance(result, Reply):
        return result
    if isinstance(result, Response):
        return _from_response(result, structured)
    if isinstance(result, str):
        return Reply(text_content(result, structured))
    if hasattr(result, "model_dump") and not isinstance(result, Mapping):
        result = result.model_dump()
    if isinstance(result, Mapping):
        return _from_mapping(result, structured)
    if isinstance(result, list):
        return Reply(data_content(result))
    raise MalformedReply(f"model_call_func returned {type(result).__name__}; expected a "
                         "str, a dict or a Response")


def _from_mapping(result: Mapping[str, Any], structured: bool) -> Reply:
    if "choices" in result:
        return parse_openai_reply(result, structured)
    if result.get("type") == "message" and isinstance(result.get("content"), list):
        return parse_anthropic_reply(result, structured)
    if "content" in result and set(result) <= {"content", "usage", "confidence", "model",
                                                "finish_reason"}:
        return _from_response(Response(**result), structured)
    return Reply(data_content(dict(result)))


def _from_response(response: Response, structured: bool) -> Reply:
    content = response.content
    parsed = (text_content(content, structured) if isinstance(content, str)
              else data_content(content))
    return Reply(parsed, usage=_usage(response.usage), finish_reason=response.finish_reason,
                 response_model=response.model, confidence=response.confidence)


def _usage(raw: Usage | Mapping[str, int] | None) -> Usage | None:
    if raw is None or isinstance(raw, Usage):
        return raw
    return Usage(int(raw.get("input_tokens", raw.get("prompt_tokens", 0)) or 0),
                 int(raw.get("output_tokens", raw.get("completion_tokens", 0)) or 0))
