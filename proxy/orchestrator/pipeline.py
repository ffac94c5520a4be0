"""The in-process orchestrator the proxy calls for shadow and divert: `build_pipeline`
makes it from the settings, `answer()` answers one client request, `render()` puts the
answer in the client's wire format.

Layer: composition. The pipeline owns its long-lived resources (the orchestrator's own
HTTP client and pool, never shared with the legacy or shadow clients; the learning sync
task) and closes them in `aclose()`; the Runtime enters it in its lifespan:

    pipeline = build_pipeline(settings, redis)  # the runtime's shared client
    await pipeline.start()            # loads learned records, starts the sync task
    ...
    answer = await pipeline.answer(OrchestratorRequest(...))
    rendered = pipeline.render(answer, request.wire_format, request.stream)
    ...
    await pipeline.aclose()

Two guards an operator relies on:

- A model whose `api_key_env` variable is unset is never selected (its calls would go
  out without credentials and fail, or worse, reach a keyless endpoint): it stays in the
  registry, disabled, and is named at start and on every reload (`missing_keys`, also
  on `/readyz` and in the heartbeat).
- Feedback (`record_feedback`, the admin port's `POST /feedback`) is accepted only for a
  request this orchestrator answered, about a model that answered it, any replica
  (`Learning.answered`); the task type defaults to the one the request was answered as.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx

from proxy.apis import WireFormat
from proxy.config import Settings
from proxy.config.orchestrator import OrchestratorSection
from proxy.config.policyfiles import load_validation
from proxy.orchestrator.callers import HttpModelCaller
from proxy.orchestrator.classification import Classification, ClassifyLimits, TaskType, classify
from proxy.orchestrator.conversation import parse_request
from proxy.orchestrator.engine import Engine, Job, ModelCallFn
from proxy.orchestrator.learned import Evidence
from proxy.orchestrator.learned_store import RedisLearningStore, StoreUnavailable, describe
from proxy.orchestrator.learning import FeedbackResult, Learning
from proxy.orchestrator.performance import Report, build_report
from proxy.orchestrator.registry import AIModel, ModelRegistry
from proxy.orchestrator.render import Rendered, render
from proxy.orchestrator.request import OrchestratorRequest
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.orchestrator.validation import (
    DEFAULT_POLICY,
    PolicyError,
    ValidationPolicy,
    load_policy,
)
from proxy.redisclient import Client
from proxy.transport import PoolLimits, build_client

log = logging.getLogger("llm_shadow.orchestrator")

ANSWERED = ("valid", "invalid")  # call outcomes that produced an answer to give feedback on


class FeedbackRefused(ValueError):
    """Feedback that cannot be counted; `code` names why, for the admin API's envelope."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Pipeline:
    def __init__(self, settings: OrchestratorSection, registry: ModelRegistry,
                 learning: Learning, call: ModelCallFn, *,
                 policy: ValidationPolicy = DEFAULT_POLICY, policy_path: Path | None = None,
                 client: httpx.AsyncClient | None = None, rng: random.Random | None = None,
                 missing_keys: Mapping[str, str] | None = None):
        self.settings = settings
        self.missing_keys = dict(missing_keys or {})
        self.registry = registry
        self.learning = learning
        self.policy = policy
        self.policy_path = policy_path
        self._call = call
        self._client = client
        self.engine = Engine(registry, learning, lambda: self.policy, settings, rng)

    async def start(self) -> None:
        await self.learning.start()
        log.info("orchestrator ready: %d models enabled (%s), validation policy %s",
                 len(self.registry.enabled()),
                 ", ".join(model.name for model in self.registry.enabled()) or "none",
                 self.policy_path or "built-in")
        self._warn_missing_keys()

    def _warn_missing_keys(self) -> None:
        if self.missing_keys:
            log.warning("models not selected, their API key variable is unset: %s",
                        ", ".join(f"{name} ({variable})"
                                  for name, variable in sorted(self.missing_keys.items())))

    async def aclose(self) -> None:
        await self.learning.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Pipeline:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # --- the request path ------------------------------------------------------------

    def classify(self, request: OrchestratorRequest) -> Classification:
        conversation = parse_request(request.body, request.wire_format)
        return classify(conversation, request.task_hint, self._limits())

    async def answer(self, request: OrchestratorRequest) -> OrchestratorAnswer:
        """Answer one client request. Never raises for a model's failure: the answer's
        status says `failed` or `low_confidence` with a reason (a divert then falls back
        to legacy). Cancelling the caller cancels every model call still running."""
        conversation = parse_request(request.body, request.wire_format)
        live = request.live
        job = Job(
            request_id=request.request_id,
            conversation=conversation,
            classification=classify(conversation, request.task_hint, self._limits()),
            quality_threshold=(live.quality_threshold if live.quality_threshold is not None
                               else self.settings.default_quality_threshold),
            cost_limit=(live.cost_limit if live.cost_limit is not None
                        else self.settings.default_cost_limit),
            flags=live.feature_flags,
            data_type=request.data_type,
            trace_headers=request.trace_headers,
            capture_content=request.capture_content,
            deadline=request.deadline,
        )
        answer = await self.engine.run(job, self._call)
        self.learning.answered(request.request_id, job.classification.task_type.value,
                               [call.model for call in answer.calls
                                if call.outcome in ANSWERED])
        return answer

    @staticmethod
    def render(answer: OrchestratorAnswer, wire_format: WireFormat, stream: bool) -> Rendered:
        return render(answer, wire_format, stream)

    def _limits(self) -> ClassifyLimits:
        return ClassifyLimits(self.settings.complex_prompt_chars,
                              self.settings.complex_message_count)

    # --- feedback and reports ---------------------------------------------------------

    async def record_feedback(self, request_id: str, model_name: str,
                              task_type: TaskType | str | None, was_correct: bool
                              ) -> FeedbackResult:
        """Count feedback about one model's answer to one request; `FeedbackRefused`
        unless that model answered that request (`check_feedback`)."""
        task = await self.check_feedback(request_id, model_name, task_type)
        return await self.learning.feedback(request_id, model_name, task, was_correct)

    async def check_feedback(self, request_id: str, model_name: str,
                             task_type: TaskType | str | None = None) -> str:
        """The task type the feedback counts under, or `FeedbackRefused` (unknown
        request, a model that did not answer it, another task type, or a store that
        cannot say)."""
        given = None if task_type is None else TaskType.parse(task_type)
        if task_type is not None and given is None:
            raise FeedbackRefused("invalid_task_type", f"unknown task type {task_type!r}; "
                                  "one of " + ", ".join(t.value for t in TaskType))
        try:
            answered = await self.learning.answered_by(request_id)
        except StoreUnavailable:
            raise FeedbackRefused("store_unavailable", f"request_id {request_id!r} is not "
                                  "known to this replica and the learning store cannot be "
                                  "reached to check it; retry later") from None
        if answered is None:
            ttl = self.settings.learning.feedback_ttl_seconds
            raise FeedbackRefused("unknown_request_id", f"request_id {request_id!r}: the "
                                  f"orchestrator answered no request with this id in the "
                                  f"last {ttl}s (orchestrator.learning.feedback_ttl_seconds)")
        if model_name not in answered:
            raise FeedbackRefused("model_did_not_answer", f"model {model_name!r} did not "
                                  f"answer request {request_id!r} (answered by "
                                  f"{', '.join(sorted(answered))})")
        task = answered[model_name]
        if given is not None and given.value != task:
            raise FeedbackRefused("task_type_mismatch", f"request {request_id!r} was "
                                  f"answered as {task}, not {given.value}")
        return task

    async def report(self) -> Report:
        samples = await self.learning.samples()
        return build_report(self.learning.records(), samples, self.learning.evidence,
                            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
                            store=describe(self.learning.store))

    def apply_settings(self, settings: Settings) -> None:
        """A configuration reload (file watch or SIGHUP): models, orchestrator settings,
        model keys and the validation policy apply from the next request. Learned
        records, the HTTP pool and the sync task stay (pool size and `learning.*` need a
        restart). An invalid policy file is refused, logged, and the running one kept."""
        section = settings.config.orchestrator
        self.settings = section
        self.engine.settings = section
        self.missing_keys = settings.missing_keys()
        self.registry = usable_models(settings)
        self.engine.registry = self.registry
        if isinstance(self._call, HttpModelCaller):
            self._call.keys = settings.model_keys
            self._call.default_timeout = section.model_timeout_seconds
        self.policy_path = settings.resolve(section.validation_policy_file)
        if self.policy_path.exists():
            self.reload_policy()
        else:
            log.warning("validation policy %s not found: keeping the running one",
                        self.policy_path)
        log.info("orchestrator settings reloaded: %d models enabled",
                 len(self.registry.enabled()))
        self._warn_missing_keys()

    def reload_policy(self) -> bool:
        """Re-read the validation policy; an invalid file is refused (logged) and the
        running policy kept."""
        if self.policy_path is None:
            return False
        try:
            self.policy = load_policy(self.policy_path)
        except PolicyError as exc:
            log.error("validation policy not reloaded, keeping the running one: %s", exc)
            return False
        log.info("validation policy reloaded from %s", self.policy_path)
        return True


def usable_models(settings: Settings) -> ModelRegistry:
    """The configured models, those without their API key disabled (never selected)."""
    missing = settings.missing_keys()
    return ModelRegistry(replace(model, enabled=False) if model.name in missing else model
                         for model in map(AIModel.from_entry, settings.config.models))


def build_pipeline(settings: Settings, redis: Client) -> Pipeline:
    """The pipeline for a Runtime, its learned records on `redis` (shared; the caller
    closes it; `memory://` keeps them in this process, and the log says so at start).
    Raises `PolicyError` for an invalid validation policy file."""
    config = settings.config
    section = config.orchestrator
    learning_settings = section.learning
    store = RedisLearningStore(config.redis.keyspace, client=redis,
                               samples_kept=learning_settings.samples_kept,
                               feedback_ttl=learning_settings.feedback_ttl_seconds)
    learning = Learning(store, Evidence.from_settings(section.selection),
                        pending_limit=learning_settings.pending_limit,
                        refresh_seconds=learning_settings.refresh_seconds)
    client = build_client(config.proxy.transport, PoolLimits(
        section.max_connections, section.max_connections, config.proxy.pool.keepalive_expiry))
    caller = HttpModelCaller(client, settings.model_keys,
                             default_timeout=section.model_timeout_seconds)
    policy, path = load_validation(settings)
    return Pipeline(section, usable_models(settings), learning, caller,
                    policy=policy, policy_path=path, client=client,
                    missing_keys=settings.missing_keys())
