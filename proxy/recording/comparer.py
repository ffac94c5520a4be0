"""Comparing the two answers of one request, off the request path, and recording the
result: a comparison span with the `gen_ai.evaluation.result` event, the report
aggregates in Redis, and this replica's running rates per route (divergence and the
noise floor from legacy-vs-legacy resamples). A compared request is then offered to the
optional judge (`proxy.judge.grader`), which decides for itself whether to grade it.

With content capture opted in and `comparison.keep_examples` above 0, a `major` or
`minor` pair is also kept as an example (both answers, redacted and bounded: see
`proxy.report.example`) with its trace id, for the report to show side by side. The
orchestrator's model calls (when the in-process pipeline answered) go to the report as
per-model counters, and the models whose answer was compared get its label.

Layer: composition. The comparison itself is pure (`proxy.comparison`); this module
feeds it complete answers and hands its result to telemetry and the report buffer (which
writes to Redis in the background). It runs inside shadow and divert background tasks,
never on a client's request (except `skipped`, which only counts), and never awaits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxy.apis import Api, request_model
from proxy.comparison import (
    Answer,
    Comparison,
    DivergencePolicy,
    Limits,
    compare,
    extract_answer,
)
from proxy.exchange import Captured
from proxy.judge.grader import Judge
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.orchestrator.target import TargetCall
from proxy.recording.calls import comparison_record, model_uses
from proxy.report import example
from proxy.report.buffer import ReportBuffer
from proxy.report.entry import Outcome, ReportEntry, RoleCost
from proxy.telemetry.recorder import SpanRef, Telemetry

log = logging.getLogger("llm_shadow.comparison")


@dataclass
class RouteRates:
    """This replica's counts for a route, for the attributes on each comparison span."""

    compared: int = 0
    divergent: int = 0
    noise: int = 0
    noise_divergent: int = 0

    @property
    def noise_floor(self) -> float | None:
        return self.noise_divergent / self.noise if self.noise else None

    @property
    def above_noise(self) -> bool | None:
        floor = self.noise_floor
        if floor is None or not self.compared:
            return None
        return self.divergent / self.compared > floor


def failure_outcome(reason: str | None) -> Outcome:
    """How a failed orchestrator call counts in the report."""
    return "low_confidence" if reason == "low_confidence" else "failed"


def answer_of(api: Api | None, captured: Captured) -> Answer:
    return extract_answer(api, captured.body, content_type=captured.header(b"content-type"),
                          content_encoding=captured.header(b"content-encoding"),
                          truncated=captured.truncated or not captured.completed)


class Comparer:
    def __init__(self, policy: DivergencePolicy, limits: Limits, telemetry: Telemetry,
                 report: ReportBuffer | None, *, judge: Judge | None = None,
                 keep_examples: int = 0, clock: Callable[[], float] = time.time):
        self.policy = policy
        self.limits = limits
        self.telemetry = telemetry
        self.report = report
        self.judge = judge
        self.keep_examples = keep_examples
        self.clock = clock  # wall time of report entries
        self.rates: dict[str, RouteRates] = {}

    def _diverge(self, route: str, a: Answer, b: Answer) -> Comparison:
        return compare(a, b, self.policy.for_route(route), self.limits)

    def candidate(self, call: TargetCall, *, legacy: Captured, candidate: Captured,
                  parent: SpanRef | None, outcome: Outcome, divert: bool = False,
                  answer: OrchestratorAnswer | None = None) -> Comparison:
        """Legacy against the orchestrator's answer to the same request (`answer`: the
        in-process pipeline's result, when it answered, for the per-model counts)."""
        route = call.route
        legacy_answer, candidate_answer = answer_of(call.api, legacy), answer_of(call.api,
                                                                                 candidate)
        result = self._diverge(route, legacy_answer, candidate_answer)
        rates = self.rates.setdefault(route, RouteRates())
        rates.compared += 1
        rates.divergent += result.divergent
        delta = candidate.duration - legacy.duration
        evidence = (example.shown_evidence(result.evidence, legacy_answer, candidate_answer)
                    if self.telemetry.captures_content else ())
        span = self.telemetry.record_comparison(parent, comparison_record(
            route, result, latency_delta=delta, noise_floor=rates.noise_floor,
            above_noise=rates.above_noise, response_id=None, evidence=evidence))
        contributors = answer.contributing_models if answer is not None else ()
        now = self.clock()
        kept = (self._example(call, result, legacy_answer, candidate_answer, now,
                              parent, contributors)
                if self._keeps(result) else None)
        self._report(ReportEntry(route, call.request_id, at=now,
                                 model=request_model(call.payload), comparison=result,
                                 latency_delta_s=delta, orchestrator=outcome,
                                 divert=divert, contributors=contributors, example=kept))
        if self.judge is not None:
            self.judge.consider(call, legacy_answer, candidate_answer, result, span)
        return result

    def _keeps(self, result: Comparison) -> bool:
        """An example is kept only with content capture opted in (it quotes both
        answers), `keep_examples` set, and for the labels people need to read."""
        return (self.keep_examples > 0 and self.report is not None
                and self.telemetry.captures_content and result.label in example.KEPT_LABELS)

    def _example(self, call: TargetCall, result: Comparison, legacy: Answer,
                 candidate: Answer, at: float, parent: SpanRef | None,
                 contributors: tuple[str, ...]) -> example.Example:
        return example.build(
            route=call.route, request_id=call.request_id, at=at, label=result.label,
            reason=result.reason, score=result.score, legacy=legacy, orchestrator=candidate,
            evidence=result.evidence, trace_id=parent.trace_id if parent else "",
            models=contributors, legacy_model=request_model(call.payload))

    def noise(self, call: TargetCall, *, legacy: Captured, resample: Captured) -> Comparison:
        """Legacy against itself: the noise floor's sample (its cost is recorded by the
        call that made it)."""
        route = call.route
        result = self._diverge(route, answer_of(call.api, legacy),
                               answer_of(call.api, resample))
        rates = self.rates.setdefault(route, RouteRates())
        rates.noise += 1
        rates.noise_divergent += result.divergent
        self._report(ReportEntry(route, call.request_id, at=self.clock(), noise=result))
        return result

    def outcome(self, *, route: str, request_id: str, outcome: Outcome,
                costs: Sequence[RoleCost] = (), divert: bool = False,
                fallback: bool = False, answer: OrchestratorAnswer | None = None) -> None:
        """An orchestrator result with nothing to compare (it failed, or legacy did);
        `answer` (the in-process pipeline's) adds its model calls."""
        self._report(ReportEntry(route, request_id, at=self.clock(), costs=tuple(costs),
                                 orchestrator=outcome, divert=divert, fallback=fallback,
                                 models=model_uses(answer)))

    def skipped(self, route: str, reason: str) -> None:
        """A shadow that was due and did not run (the report counts them by reason). On
        the request path, once per request at saturation: only a count here, one
        entry per route and reason at the buffer's next flush."""
        if self.report is not None:
            self.report.count_skip(route, reason)

    def costs(self, route: str, request_id: str, costs: Sequence[RoleCost], *,
              answer: OrchestratorAnswer | None = None) -> None:
        """Costs of one request; `answer` (the in-process pipeline's) adds its model
        calls."""
        self._report(ReportEntry(route, request_id, at=self.clock(), costs=tuple(costs),
                                 models=model_uses(answer)))

    def _report(self, entry: ReportEntry) -> None:
        if self.report is not None:
            self.report.add(entry)
