"""The judge at work: for a comparison chosen by `proxy.judge.sampling`, ask the judge's
model for a verdict in the background, and record it beside the rules' label.

Layer: composition (background tasks), over the orchestrator's model caller
(`proxy.orchestrator.callers.HttpModelCaller` on a client of its own from
`proxy.transport.build_client`), the budget of `proxy.shadow.budget` under its own key,
telemetry and the report buffer. The guarantees, each tested:

- off the request path: `consider` is synchronous and never awaits; it runs in the
  comparer after both answers are complete, and the call runs in its own task;
- content leaves only where allowed: nothing is sent unless `comparison.judge.enabled`
  and the route is in `comparison.judge.routes` (checked when the comparison is
  chosen, and in-flight calls of a route a reload no longer allows are cancelled);
- bounded: at most `max_concurrency` calls; when full the comparison is dropped
  (counted `concurrency_full`), never queued; each call has its own deadline
  (`timeout_seconds`) and no retries;
- budgeted: each call reserves its estimated cost (the prompt's bytes / 3 tokens plus
  `max_output_tokens`, at the model's prices) from `budget_usd_per_hour` before it
  starts and settles the real cost after (an error status costs nothing; a timeout
  keeps the estimate, since the provider may have billed it);
- a model without its API key (its `api_key_env` unset) is never called
  (counted `no_key`); answers longer than the rubric's bound are not judged (`too_long`);
- every outcome is counted: a verdict, a failure (`timeout`, `error`,
  `invalid_verdict`: a reply that names no class is never a verdict) or a skip.

The model named by `comparison.judge.model` is called whether or not its `enabled`
lets the orchestrator select it: `enabled: false` makes a judge-only model.
Failures never reach anything else; the one broad catch is in `_run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from proxy.apis import wire_format
from proxy.comparison import Answer, Comparison, Label
from proxy.config import ConfigError, Settings
from proxy.config.comparison import JudgeSection
from proxy.config.policyfiles import load_judge
from proxy.errors import ProxyError, UpstreamTimeout
from proxy.judge.rubric import Rubric
from proxy.judge.sampling import not_judged, route_allowed
from proxy.judge.verdict import InvalidVerdict, Verdict, agreement, read_verdict
from proxy.orchestrator.callers import HttpModelCaller
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.content import Usage
from proxy.orchestrator.conversation import Conversation, Message, OutputFormat, parse_request
from proxy.orchestrator.cost import estimate_input_tokens, price
from proxy.orchestrator.engine import ModelCallFn
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.request import ModelRequest
from proxy.orchestrator.target import TargetCall
from proxy.orchestrator.wire import Reply
from proxy.redisclient import Client
from proxy.report.buffer import ReportBuffer
from proxy.report.entry import ReportEntry, RoleCost
from proxy.report.judgements import JudgeTally
from proxy.shadow.budget import Budget, BudgetUnavailable, RedisBudget
from proxy.telemetry.recorder import SpanRef, Telemetry
from proxy.telemetry.records import Judgement, ModelCall
from proxy.transport import PoolLimits, build_client

log = logging.getLogger("llm_shadow.judge")


@dataclass(frozen=True)
class _Job:
    """One judgement, with the settings it was chosen under (a reload mid-flight does
    not mix two rubrics)."""

    call: TargetCall
    label: Label
    reference: str
    candidate: str
    parent: SpanRef | None
    model: AIModel
    rubric: Rubric
    timeout: float

    @property
    def route(self) -> str:
        return self.call.route


@dataclass
class _Outcome:
    reply: Reply | None = None
    cost: float = 0.0
    error: str | None = None  # the span's error.type
    failure: str | None = None  # the report's failure class


class Judge:
    def __init__(self, *, section: JudgeSection, rubric: Rubric | None,
                 models: dict[str, AIModel], keyless: frozenset[str], caller: ModelCallFn,
                 budget: Budget, telemetry: Telemetry, report: ReportBuffer | None,
                 client: httpx.AsyncClient | None = None):
        self.section = section
        self.rubric = rubric
        self.models = models
        self.keyless = keyless  # model names whose api_key_env is unset
        self.caller = caller
        self.budget = budget
        self.telemetry = telemetry
        self.report = report
        self._client = client
        self.tasks: dict[asyncio.Task[None], str] = {}
        self.not_judged: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.cancelled = 0  # withdrawn by a reload, or at shutdown

    # --- in the comparer: synchronous, never awaits ----------------------------------

    def consider(self, call: TargetCall, legacy: Answer, candidate: Answer,
                 result: Comparison, parent: SpanRef | None) -> bool:
        """Start a judgement of this comparison if it is chosen and there is room."""
        section = self.section
        why = not_judged(section, call.route, call.request_id, result)
        if why is not None:
            self.not_judged[why] += 1
            return False
        model = self.models.get(section.model or "")
        if self.rubric is None:
            return self._skip(call, result.label, "no_policy")
        if model is None or model.name in self.keyless:
            return self._skip(call, result.label, "no_key")
        if not self.rubric.fits(legacy.text, candidate.text):
            return self._skip(call, result.label, "too_long")
        if len(self.tasks) >= section.max_concurrency:
            return self._skip(call, result.label, "concurrency_full")
        job = _Job(call, result.label, legacy.text, candidate.text, parent, model,
                   self.rubric, section.timeout_seconds)
        task = asyncio.get_running_loop().create_task(self._run(job))
        self.tasks[task] = call.route
        task.add_done_callback(self._forget)
        return True

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.pop(task, None)

    def _skip(self, call: TargetCall, label: Label, reason: str) -> bool:
        self.skipped[reason] += 1
        self.telemetry.count_judge_skipped(reason, call.route)
        self._report(call, JudgeTally(label, skipped=reason))
        return False

    # --- the judgement ----------------------------------------------------------------

    async def _run(self, job: _Job) -> None:
        started = time.monotonic()
        try:
            await self._judge(job, started)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except Exception:  # a judge fault must never reach the comparison: count it
            log.exception("judge of request %s failed", job.call.request_id)
            self._record(job, _Outcome(error="error", failure="error"), started)

    async def _judge(self, job: _Job, started: float) -> None:
        system, user = job.rubric.render(question_of(job.call), job.reference,
                                         job.candidate)
        request = judge_request(job, system, user)
        reserve = price(job.model, _estimate(system, user, job.rubric))
        try:
            hour = await self.budget.reserve(reserve)
        except BudgetUnavailable:
            self._skip(job.call, job.label, "budget_unavailable")
            return
        if hour is None:
            self._skip(job.call, job.label, "budget_spent")
            return
        outcome = _Outcome(cost=reserve)
        try:
            outcome = await self._ask(job, request, reserve)
        finally:
            await self.budget.settle(hour, reserve, outcome.cost)
        self._record(job, outcome, started)

    async def _ask(self, job: _Job, request: ModelRequest, reserve: float) -> _Outcome:
        """The reply and what it cost, or why there is none. No retries."""
        try:
            async with asyncio.timeout(job.timeout):
                reply = await self.caller(job.model, request)
        except (TimeoutError, UpstreamTimeout):
            return _Outcome(cost=reserve, error="timeout", failure="timeout")
        except ProxyError as exc:  # an error status or transport failure is not billed
            return _Outcome(cost=0.0, error=exc.code, failure="error")
        cost = price(job.model, reply.usage) if reply.usage is not None else reserve
        return _Outcome(reply=reply, cost=cost)

    def _record(self, job: _Job, outcome: _Outcome, started: float) -> None:
        ended = time.monotonic()
        verdict: Verdict | None = None
        reason = ""
        if outcome.reply is not None:
            try:
                verdict, reason = read_verdict(outcome.reply.content.text)
            except InvalidVerdict:
                outcome.error = outcome.failure = "invalid_verdict"
        if verdict is not None:
            self.verdicts[verdict] += 1
        else:
            self.failed[outcome.failure or "error"] += 1
        capture = self.telemetry.captures_content
        self.telemetry.record_judgement(job.parent, Judgement(
            route=job.route, rules_label=job.label, verdict=verdict,
            agreement=agreement(job.label, verdict) if verdict else None,
            start=started, end=ended, explanation=reason if capture and reason else None,
            error_type=outcome.error, call=model_call(job, outcome, started, ended)))
        tally = JudgeTally(job.label, verdict=verdict,
                           failure=None if verdict else outcome.failure or "error")
        self._report(job.call, tally, RoleCost("judge", outcome.cost))

    def _report(self, call: TargetCall, tally: JudgeTally, *costs: RoleCost) -> None:
        if self.report is not None:
            self.report.add(ReportEntry(call.route, call.request_id, at=time.time(),
                                        costs=costs, judge=tally))

    # --- settings, shutdown, stats ---------------------------------------------------

    def apply_settings(self, settings: Settings) -> None:
        """A configuration reload: every judge setting applies to the next comparison
        (the connection pool keeps its start-up size). In-flight calls of a route that
        may no longer be judged are cancelled. An invalid judge policy keeps the
        running one."""
        self.section = settings.config.comparison.judge
        self.models = judge_models(settings)
        self.keyless = keyless_models(settings)
        if isinstance(self.caller, HttpModelCaller):
            self.caller.keys = settings.model_keys
            self.caller.default_timeout = self.section.timeout_seconds
        self.budget.limit = self.section.budget_usd_per_hour
        try:
            self.rubric = load_judge(settings) or self.rubric
        except ConfigError as exc:
            log.error("judge policy not reloaded, keeping the running one:\n%s", exc)
        for task, route in list(self.tasks.items()):
            if not route_allowed(self.section, route):
                task.cancel("judge no longer allowed on this route")
        self.announce()

    def announce(self) -> None:
        """Say at start (and on reload) whether the judge runs, where, with what."""
        section = self.section
        if not section.enabled:
            log.debug("judge: off")
            return
        if section.model in self.keyless:
            log.warning("judge: model %s has no API key (its api_key_env is unset): the "
                        "judge does not run", section.model)
            return
        log.info("judge: model %s grades %.4g%% of %s comparisons on %s", section.model,
                 section.sample_percent, "/".join(section.labels), ", ".join(section.routes))

    async def aclose(self, timeout: float = 5.0) -> None:
        for task in list(self.tasks):
            task.cancel("shutting down")
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        await self.budget.release()  # the calls settled: give back the unused lease
        if self._client is not None:
            await self._client.aclose()

    def stats(self) -> dict[str, Any]:
        """For `/statz`."""
        return {"enabled": self.section.enabled, "in_flight": len(self.tasks),
                "max_concurrency": self.section.max_concurrency,
                "verdicts": dict(self.verdicts), "failed": dict(self.failed),
                "skipped": dict(self.skipped), "not_judged": dict(self.not_judged),
                "cancelled": self.cancelled}


def question_of(call: TargetCall) -> str:
    """The client's last user message, when the API is one the proxy can read."""
    wire = wire_format(call.api)
    if wire is None or call.payload is None:
        return ""
    return parse_request(call.payload, wire).last_user_text()


def judge_request(job: _Job, system: str, user: str) -> ModelRequest:
    output = OutputFormat("json_object") if job.rubric.json_mode else OutputFormat()
    conversation = Conversation(system=system, messages=(Message("user", user),),
                                output=output, temperature=job.rubric.temperature)
    return ModelRequest(request_id=job.call.request_id, task_type=TaskType.SIMPLE_QUERY,
                        conversation=conversation, max_tokens=job.rubric.max_output_tokens)


def _estimate(system: str, user: str, rubric: Rubric) -> Usage:
    """Tokens reserved before the call: the orchestrator's over-estimate of the prompt
    (`proxy.orchestrator.cost`) and the whole output bound."""
    prompt = len(system.encode()) + len(user.encode())
    return Usage(estimate_input_tokens(prompt, 2), rubric.max_output_tokens)


def model_call(job: _Job, outcome: _Outcome, start: float, end: float) -> ModelCall:
    """The judge's model call as a CLIENT span (role `judge`); never with content."""
    reply, model = outcome.reply, job.model
    usage = reply.usage if reply is not None else None
    return ModelCall(
        role="judge", operation="chat", provider=model.provider.lower(),
        request_model=model.api_model, start=start, end=end, route=job.route,
        response_model=reply.response_model if reply else None,
        response_id=reply.response_id if reply else None,
        server_address=model.host or None, server_port=model.port,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        usage_estimated=reply is not None and usage is None,
        finish_reasons=(reply.finish_reason,) if reply and reply.finish_reason else (),
        error_type=outcome.error if outcome.error != "invalid_verdict" else None,
        cost_usd=outcome.cost)


def judge_models(settings: Settings) -> dict[str, AIModel]:
    return {entry.name: AIModel.from_entry(entry) for entry in settings.config.models}


def keyless_models(settings: Settings) -> frozenset[str]:
    """Models (enabled or not) whose `api_key_env` names a variable that is unset."""
    return frozenset(settings.missing_keys(disabled_too=True))


def build_judge(settings: Settings, redis: Client, telemetry: Telemetry,
                report: ReportBuffer | None) -> Judge:
    """The judge for a Runtime, whether enabled or not (a reload may switch it on): its
    own small HTTP client (never the legacy, shadow or orchestrator pool), its budget
    under `{prefix}:budget:judge:*`. Raises `ConfigError` for an invalid judge policy,
    or a missing one while the judge is enabled."""
    config = settings.config
    section = config.comparison.judge
    rubric = load_judge(settings)
    client = build_client(config.proxy.transport, PoolLimits(
        section.max_concurrency, section.max_concurrency, config.proxy.pool.keepalive_expiry))
    caller = HttpModelCaller(client, settings.model_keys,
                             default_timeout=section.timeout_seconds)
    budget: Budget = RedisBudget(redis, config.redis.keyspace, section.budget_usd_per_hour,
                                 kind="judge")
    return Judge(section=section, rubric=rubric, models=judge_models(settings),
                 keyless=keyless_models(settings), caller=caller, budget=budget,
                 telemetry=telemetry, report=report, client=client)
