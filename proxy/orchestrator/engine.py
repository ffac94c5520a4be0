"""The orchestration of one request: select, call in parallel, validate, merge, escalate
below the quality threshold within the cost limit, learn.

Layer: core (asyncio; I/O only through the `call` function and the `Learning` view).
Shared by the proxy's pipeline (`proxy.orchestrator.pipeline`, HTTP model callers) and the
guide's Python API (`proxy.orchestrator.api`, the user's `model_call_func`).

One request, step by step:

1. The task type sets how many models start (`*_model_count`).
2. Selection ranks every enabled model (`proxy.orchestrator.selection`); the first that
   fit the cost limit together start, in parallel (or one after another when
   `enable_parallel_execution` is off), each under its own timeout.
3. Each answer is validated as it arrives (`enable_validation`); a failed one is
   excluded and recorded. With `enable_early_result_processing`, once the answers in
   hand merge to a confidence at or above the quality threshold, the calls still running
   are cancelled.
4. The valid answers are merged (`enable_result_merging`; otherwise the first valid
   answer wins). Below the threshold, one more model is added at a time while one fits
   the remaining budget and `max_model_count` allows; a call that would exceed the cost
   limit is never started.
5. `ok` at or above the threshold; `low_confidence` below it; `failed` without a valid
   answer. With a deadline (a divert's one budget), every call's timeout is capped by
   what is left of it and no model starts once it is spent; an answer that is not `ok`
   because of it says so (`out_of_time`), so a divert names the budget as its fallback
   reason. Every call's outcome, and whether each answer agreed with the merged one,
   goes to the learned records (`enable_performance_tracking`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from proxy.config.orchestrator import FeatureFlags, OrchestratorSection
from proxy.deadline import Deadline
from proxy.orchestrator.classification import Classification, model_count
from proxy.orchestrator.content import Usage
from proxy.orchestrator.conversation import Conversation
from proxy.orchestrator.cost import Budget, Estimate, estimate, estimate_input_tokens, price
from proxy.orchestrator.cost import text_tokens as count_text_tokens
from proxy.orchestrator.fanout import Fanout, Finished
from proxy.orchestrator.learned import Evidence, ModelRecord, Outcome
from proxy.orchestrator.learning import Learning
from proxy.orchestrator.merge import MergeResult, Vote, first_answer, merge
from proxy.orchestrator.registry import AIModel, ModelRegistry
from proxy.orchestrator.request import ModelRequest
from proxy.orchestrator.result import CallRecord, OrchestratorAnswer
from proxy.orchestrator.selection import Candidate, plan, rank, static_order
from proxy.orchestrator.validation import Subject, ValidationPolicy, validate
from proxy.orchestrator.wire import Reply

log = logging.getLogger("llm_shadow.orchestrator")

ModelCallFn = Callable[[AIModel, ModelRequest], Awaitable[Reply]]


@dataclass(frozen=True)
class Job:
    request_id: str
    conversation: Conversation
    classification: Classification
    quality_threshold: float
    cost_limit: float | None
    flags: FeatureFlags = field(default_factory=FeatureFlags)
    data_type: str | None = None
    trace_headers: tuple[tuple[str, str], ...] = ()
    capture_content: bool = False
    deadline: Deadline | None = None


class Engine:
    def __init__(self, registry: ModelRegistry, learning: Learning,
                 policy: Callable[[], ValidationPolicy], settings: OrchestratorSection,
                 rng: random.Random | None = None):
        self.registry = registry
        self.learning = learning
        self.policy = policy
        self.settings = settings
        self.rng = rng or random.Random(settings.selection.seed)

    def timeout_of(self, model: AIModel) -> float:
        return model.timeout_seconds or self.settings.model_timeout_seconds

    async def run(self, job: Job, call: ModelCallFn) -> OrchestratorAnswer:
        task = job.classification.task_type
        models = self.registry.enabled()
        if not models:
            return _failed(job, "no models are enabled")
        if job.conversation.unsupported:
            return _failed(job, "unsupported input: "
                           + ", ".join(sorted(set(job.conversation.unsupported))))
        request = self._model_request(job)
        ranked = self.ranked(job, models, request.max_tokens)
        run = _Run(self, job, request, call, ranked)
        try:
            await run.initial(model_count(
                task, self.settings.simple_query_model_count,
                self.settings.complex_reasoning_model_count,
                self.settings.validation_model_count))
            await run.escalate()
        finally:
            run.absorb_all(await run.fanout.cancel())
        answer = run.answer()
        if run.out_of_time and not answer.ok:
            answer = replace(answer, out_of_time=True)
        self._learn(job, run)
        log.debug("request %s: %s (%s), confidence %.3f, models %s", job.request_id,
                  answer.status, answer.reason, answer.confidence,
                  ",".join(answer.contributing_models))
        return answer

    def ranked(self, job: Job, models: Sequence[AIModel], max_tokens: int) -> list[Candidate]:
        conv = job.conversation
        input_tokens = estimate_input_tokens(conv.prompt_chars() + _extra_bytes(conv),
                                             len(conv.messages) + 1)
        estimates = {m.name: estimate(m, input_tokens, max_tokens) for m in models}
        task = job.classification.task_type.value

        def record_of(name: str) -> ModelRecord:
            return self.learning.record(task, name)

        if not job.flags.enable_model_selection:
            return static_order(models, record_of, estimates,
                                Evidence.from_settings(self.settings.selection))
        return rank(models, record_of, estimates, settings=self.settings.selection,
                    cost_limit=job.cost_limit, rng=self.rng)

    def _model_request(self, job: Job) -> ModelRequest:
        max_tokens = job.conversation.max_tokens or self.settings.assumed_output_tokens
        return ModelRequest(job.request_id, job.classification.task_type, job.conversation,
                            max_tokens, job.trace_headers, job.data_type)

    def _learn(self, job: Job, run: _Run) -> None:
        if not job.flags.enable_performance_tracking:
            return
        task = job.classification.task_type.value
        for record in run.records():
            self.learning.observe(task, record.model, record.outcome,
                                  latency=None if record.outcome == "cancelled"
                                  else record.duration,
                                  cost=record.cost_usd, input_tokens=record.input_tokens,
                                  output_tokens=record.output_tokens)
            if record.agreed is not None:
                self.learning.agreement(task, record.model, record.agreed)


def _extra_bytes(conv: Conversation) -> int:
    """Characters undercount multi-byte text; add the difference for the estimate."""
    text = conv.system + "".join(message.text for message in conv.messages)
    return len(text.encode("utf-8")) - len(text)


@dataclass
class _Outcome:
    finished: Finished
    outcome: Outcome
    usage: Usage
    cost: float
    estimated: bool
    failures: tuple[str, ...] = ()


class _Run:
    """The mutable state of one request's orchestration."""

    def __init__(self, engine: Engine, job: Job, request: ModelRequest, call: ModelCallFn,
                 ranked: list[Candidate]):
        self.engine = engine
        self.job = job
        self.request = request
        self.ranked = ranked
        self.budget = Budget(job.cost_limit)
        self.fanout = Fanout(lambda model: call(model, request), engine.timeout_of,
                             deadline=job.deadline)
        self.outcomes: list[_Outcome] = []
        self.votes: list[Vote] = []
        self.tried: set[str] = set()
        self.stop_reason = ""
        # The deadline ended a call or kept a model from starting.
        self.out_of_time = False
        self._subject = _subject(job, request)

    # --- running -----------------------------------------------------------------------

    async def initial(self, count: int) -> None:
        chosen = plan(self.ranked, count, self.budget.remaining)
        if not chosen:
            self.stop_reason = self._budget_reason()
            return
        if self.job.flags.enable_parallel_execution:
            for candidate in chosen:
                self._start(candidate)
            while self.fanout.pending:
                self.absorb(await self.fanout.next())
                if self._early_enough():
                    self.absorb_all(await self.fanout.cancel())
            return
        for candidate in chosen:
            if self._early_enough() or not self._start(candidate):
                return
            self.absorb(await self.fanout.next())

    async def escalate(self) -> None:
        while self._wants_more():
            if self._spent():
                return
            if len(self.tried) >= self.engine.settings.max_model_count:
                self.stop_reason = f"max_model_count {self.engine.settings.max_model_count}"
                return
            chosen = plan(self.ranked, 1, self.budget.remaining, frozenset(self.tried))
            if not chosen:
                self.stop_reason = (self._budget_reason() if self._untried_exist()
                                    else "no more models")
                return
            if not self._start(chosen[0]):
                return
            self.absorb(await self.fanout.next())

    def _spent(self) -> bool:
        """Whether the deadline leaves too little time to start another model."""
        deadline = self.job.deadline
        if deadline is None or not deadline.expired(time.monotonic()):
            return False
        self.out_of_time = True
        self.stop_reason = "the time budget is spent"
        return True

    def _start(self, candidate: Candidate) -> bool:
        if self._spent() or not self.budget.reserve(candidate.estimate.usd):
            return False
        self.tried.add(candidate.model.name)
        self.fanout.start(candidate)
        return True

    def _early_enough(self) -> bool:
        if not self.engine.settings.enable_early_result_processing or not self.votes:
            return False
        return self.merged().confidence >= self.job.quality_threshold

    def _wants_more(self) -> bool:
        if not self.job.flags.enable_result_merging:
            return not self.votes
        return self.merged().confidence < self.job.quality_threshold

    def _untried_exist(self) -> bool:
        return any(c.model.name not in self.tried for c in self.ranked)

    def _budget_reason(self) -> str:
        untried = [c.estimate for c in self.ranked if c.model.name not in self.tried]
        cheapest = min((e.usd for e in untried), default=0.0)
        return (f"cost limit ${self.job.cost_limit:.6f} reached: the cheapest remaining "
                f"model is estimated at ${cheapest:.6f}")

    # --- outcomes ----------------------------------------------------------------------

    def absorb_all(self, finished: Sequence[Finished]) -> None:
        for item in finished:
            self.absorb(item)

    def absorb(self, finished: Finished) -> None:
        model, est = finished.candidate.model, finished.candidate.estimate
        reply = finished.reply
        if finished.error_type == "deadline":
            self.out_of_time = True
        if reply is None:
            outcome: Outcome = ("cancelled" if finished.cancelled
                                else "timeout" if finished.timed_out else "error")
            billed = est.input_tokens if outcome in ("cancelled", "timeout") else 0
            usage = Usage(billed, 0)
            item = _Outcome(finished, outcome, usage, price(model, usage), True)
        else:
            item = self._answered(finished, reply, model, est)
        self.budget.settle(est.usd, item.cost)
        self.outcomes.append(item)

    def _answered(self, finished: Finished, reply: Reply, model: AIModel,
                  est: Estimate) -> _Outcome:
        usage = reply.usage or Usage(est.input_tokens, count_text_tokens(reply.content.text))
        cost = price(model, usage)
        failures: tuple[str, ...] = ()
        if self.job.flags.enable_validation:
            failures = validate(reply.content, self._subject, self.engine.policy()).failures
        if failures:
            log.debug("request %s: answer of %s excluded: %s", self.job.request_id,
                      model.name, "; ".join(failures))
            return _Outcome(finished, "invalid", usage, cost, reply.usage is None, failures)
        reliability = self.engine.learning.reliability(
            self.job.classification.task_type.value, model.name)
        if reply.confidence is not None:
            reliability *= min(1.0, max(0.0, reply.confidence))
        self.votes.append(Vote(model.name, reply.content, reliability))
        return _Outcome(finished, "valid", usage, cost, reply.usage is None)

    def merged(self) -> MergeResult:
        if not self.job.flags.enable_result_merging:
            return first_answer(self.votes)
        settings = self.engine.settings.merge
        return merge(self.votes, similarity_threshold=settings.similarity_threshold,
                     collision_rate=settings.collision_rate)

    # --- the answer --------------------------------------------------------------------

    def records(self) -> list[CallRecord]:
        merged = self.merged()
        compared = self.job.flags.enable_result_merging and len(self.votes) >= 2
        out = []
        for item in self.outcomes:
            finished, model = item.finished, item.finished.candidate.model
            reply = finished.reply
            out.append(CallRecord(
                model=model.name, provider=model.provider, api=model.api, host=model.host,
                started_at=finished.started_at, ended_at=finished.ended_at,
                outcome=item.outcome, input_tokens=item.usage.input_tokens,
                output_tokens=item.usage.output_tokens, cost_usd=item.cost,
                cost_estimated=item.estimated, error_type=finished.error_type,
                finish_reason=reply.finish_reason if reply else None,
                response_model=reply.response_model if reply else None,
                response_id=reply.response_id if reply else None,
                validation_failures=item.failures, port=model.port, api_model=model.api_model,
                output_text=reply.content.text if reply and self.job.capture_content else None,
                agreed=merged.agreed(model.name) if compared and item.outcome == "valid"
                else None,
            ))
        return out

    def answer(self) -> OrchestratorAnswer:
        merged, job = self.merged(), self.job
        records = tuple(self.records())
        base = replace(_failed(job, ""), calls=records)
        winner = merged.winner
        if winner is None:
            return replace(base, reason=self._failure_reason())
        ok = merged.confidence >= job.quality_threshold
        reason = ("confidence reached the quality threshold" if ok else
                  f"confidence {merged.confidence:.3f} below the quality threshold "
                  f"{job.quality_threshold:.3f}" + (f" ({self.stop_reason})"
                                                     if self.stop_reason else ""))
        finish = next((r.finish_reason for r in records if r.model == winner.source), None)
        return replace(base, status="ok" if ok else "low_confidence", reason=reason,
                       content=winner.representative, contributing_models=winner.members,
                       confidence=merged.confidence, confidence_scores=dict(merged.scores),
                       finish_reason=finish)

    def _failure_reason(self) -> str:
        if not self.outcomes:
            return self.stop_reason or "no model was called"
        parts = []
        for item in self.outcomes:
            detail = item.failures[0] if item.failures else item.finished.error_type
            parts.append(f"{item.finished.candidate.model.name}: {item.outcome}"
                         + (f" ({detail})" if detail else ""))
        return "no valid answer: " + "; ".join(parts)


def _subject(job: Job, request: ModelRequest) -> Subject:
    conv = job.conversation
    schema = conv.output.schema if conv.output.kind == "json_schema" else None
    return Subject(task_type=job.classification.task_type.value, data_type=job.data_type,
                   request_schema=schema,
                   tool_schemas={tool.name: tool.parameters for tool in conv.tools})


def _failed(job: Job, reason: str) -> OrchestratorAnswer:
    return OrchestratorAnswer(status="failed", reason=reason, request_id=job.request_id,
                              task_type=job.classification.task_type,
                              task_reason=job.classification.reason,
                              requested_model=job.conversation.model,
                              include_usage=job.conversation.include_usage,
                              created=int(time.time()))
