"""The recording API the request path and background tasks call: one trace per proxied
request, a span per model call, a comparison span with the evaluation event, and the
metrics that go with them.

Layer: adapter (OpenTelemetry API/SDK). Built by `proxy.telemetry.setup`; the providers
it records into are its own (never the global ones), so tests can build several.

Hot-path cost: `start_request` creates one span; `end_request` sets the outcome, ends
it (an O(1) queue append, see `batching`) and adds to a dict (`tally`). SDK metric
instruments (histograms) are only used for model calls and comparisons. Model calls
and comparisons are recorded after the fact with explicit timestamps, usually from
background tasks. Nothing here does I/O or blocks; a recording error in an exporter
never reaches the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy.config.telemetry import CaptureMode
from proxy.telemetry import attributes as attrs
from proxy.telemetry import names as n
from proxy.telemetry.lifecycle import Providers
from proxy.telemetry.records import Comparison, FlagObservation, Judgement, ModelCall
from proxy.telemetry.redaction import header_attributes, reason_code
from proxy.telemetry.tally import Key, Tally

FlagCallback = Callable[[], FlagObservation | None]
_PROPAGATOR = TraceContextTextMapPropagator()


class SpanRef:
    """An opaque handle on a recorded span, usable as a parent for later records."""

    __slots__ = ("context",)

    def __init__(self, context: trace_api.SpanContext):
        self.context = context

    @property
    def trace_id(self) -> str:
        """The trace id as Jaeger shows it (32 hex digits), or "" when not traced."""
        return format(self.context.trace_id, "032x") if self.context.is_valid else ""


class RequestTrace(SpanRef):
    """The SERVER span of one proxied request, from `Telemetry.start_request`."""

    __slots__ = ("_headers", "ended", "method", "route", "span", "started")

    def __init__(self, span: trace_api.Span, started: float, method: str, route: str | None):
        super().__init__(span.get_span_context())
        self.span = span
        self.started = started
        self.method = method
        self.route = route
        self.ended = False
        self._headers: list[tuple[bytes, bytes]] | None = None

    def outgoing_headers(self) -> list[tuple[bytes, bytes]]:
        """W3C `traceparent` (and `tracestate`) naming this request's SERVER span as
        parent: put them on orchestrator and model calls so they join this trace."""
        if self._headers is None:
            self._headers = trace_headers(self.context)
        return self._headers


Parent = SpanRef | None


def trace_headers(context: trace_api.SpanContext) -> list[tuple[bytes, bytes]]:
    if not context.is_valid:
        return []
    flags = int(context.trace_flags) & 0xFF
    value = f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    headers = [(b"traceparent", value.encode("ascii"))]
    if context.trace_state:
        headers.append((b"tracestate", context.trace_state.to_header().encode("ascii")))
    return headers


class Telemetry:
    """Records requests, model calls and comparisons, and owns its providers (closed by
    `close`/`aclose`, which the runtime's lifecycle calls)."""

    def __init__(self, tracer: Tracer, meter: Meter, *, semconv: n.Semconv = n.RELEASED,
                 capture: CaptureMode = "none", header_allow: Iterable[str] = (),
                 trust_incoming: bool = True, tracing: bool = True,
                 providers: Providers | None = None, shutdown_timeout: float = 5.0):
        self.tracer = tracer
        self.providers = providers or Providers()
        self.shutdown_timeout = shutdown_timeout
        self.closed = False
        self.semconv = semconv
        self.capture_span = capture in ("span", "span_and_event")
        self.capture_event = capture in ("event", "span_and_event")
        self.tracing = tracing
        self._header_allow = frozenset(name.lower().encode("latin-1") for name in header_allow)
        self._trust_incoming = trust_incoming
        self._offset_ns = time.time_ns() - time.monotonic_ns()
        self._flag_callbacks: list[FlagCallback] = []
        self._instruments(meter)

    @property
    def captures_content(self) -> bool:
        """True when the operator opted in to recording prompts and completions: callers
        build message content for `ModelCall` only then (it costs a parse of both bodies,
        and the recorder would drop it anyway)."""
        return self.capture_span or self.capture_event

    def _instruments(self, meter: Meter) -> None:
        duration = n.DURATION_BUCKETS
        self._call_duration = meter.create_histogram(
            self.semconv.operation_duration, "s", "GenAI operation duration",
            explicit_bucket_boundaries_advisory=duration)
        self._first_chunk = meter.create_histogram(
            self.semconv.time_to_first_chunk, "s", "Time to the first streamed chunk",
            explicit_bucket_boundaries_advisory=duration)
        self._tokens = meter.create_histogram(
            n.GEN_AI_CLIENT_TOKEN_USAGE, "{token}", "Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=n.TOKEN_BUCKETS)
        self._divergence = meter.create_histogram(
            n.METRIC_DIVERGENCE, "1", "Divergence of the orchestrator answer from legacy",
            explicit_bucket_boundaries_advisory=n.DIVERGENCE_BUCKETS)
        self._cost = Tally(meter, n.METRIC_COST, "{USD}", "Cost in US dollars, by role")
        self._comparisons = Tally(meter, n.METRIC_COMPARISONS, "{comparison}",
                                  "Comparisons by divergence label")
        self._decisions = Tally(meter, n.METRIC_DECISIONS, "{request}",
                                "Traffic decisions by action")
        self._skipped = Tally(meter, n.METRIC_SHADOW_SKIPPED, "{shadow}",
                              "Shadows not run or not finished, by reason")
        self._fallbacks = Tally(meter, n.METRIC_DIVERT_FALLBACKS, "{request}",
                                "Diverted requests answered by legacy, by reason")
        self._cuts = Tally(meter, n.METRIC_DIVERT_STREAMS_CUT, "{request}",
                           "Diverted streams the orchestrator failed after their first "
                           "byte (aborted, never spliced), by reason")
        self._verdicts = Tally(meter, n.METRIC_JUDGE_VERDICTS, "{comparison}",
                               "Judge verdicts by rules label, verdict and agreement")
        self._judge_skipped = Tally(meter, n.METRIC_JUDGE_SKIPPED, "{comparison}",
                                    "Comparisons the judge was to grade and did not, "
                                    "by reason")
        self._meter = meter
        meter.create_observable_counter(n.METRIC_SPANS_DROPPED, [self._observe_drops],
                                        "{span}", "Spans dropped before export")

    # --- the request (SERVER span) ---

    def start_request(self, method: str, route: str | None, path: str, request_id: str,
                      server_address: str | None = None, server_port: int | None = None, *,
                      headers: Sequence[tuple[bytes, bytes]] = (), scheme: str = "http",
                      started_at: float | None = None) -> RequestTrace:
        """Open the SERVER span. `path` is the request target as received (its query is
        redacted); `headers` are the client's raw headers, used only for an incoming
        `traceparent` and the configured header allow-list."""
        started = time.monotonic() if started_at is None else started_at
        method = attrs.http_method(method)
        if not self.tracing:
            return RequestTrace(trace_api.INVALID_SPAN, started, method, route)
        span_attrs = attrs.server_attributes(method, route, path, request_id,
                                             server_address, server_port, scheme)
        if self._header_allow:
            span_attrs.update(header_attributes(headers, self._header_allow))
        span = self.tracer.start_span(
            n.server_span_name(method, route), self._incoming(headers), SpanKind.SERVER,
            span_attrs, start_time=self._ns(started))
        return RequestTrace(span, started, method, route)

    def end_request(self, trace: RequestTrace, status: int | None,
                    decision: str | None = None, *, decision_reason: str | None = None,
                    bucket: int | None = None, answered_by: str | None = None,
                    error_type: str | None = None, fallback_reason: str | None = None,
                    shadow_skip_reason: str | None = None, flag_version: int | None = None,
                    flag_state: str | None = None, client_gone: bool = False,
                    ended_at: float | None = None, cut_reason: str | None = None) -> None:
        """Close the SERVER span with the outcome; counts the decision (once per request).
        A second call for the same trace does nothing."""
        if trace.ended:
            return
        trace.ended = True
        ended = time.monotonic() if ended_at is None else ended_at
        error = attrs.server_error_type(status, error_type)
        span = trace.span
        if span.is_recording():
            span.set_attributes(attrs.outcome_attributes(
                status, decision=decision, decision_reason=decision_reason, bucket=bucket,
                answered_by=answered_by, error_type=error_type,
                fallback_reason=fallback_reason, shadow_skip_reason=shadow_skip_reason,
                flag_version=flag_version, flag_state=flag_state, client_gone=client_gone,
                cut_reason=cut_reason))
            if error is not None and (status is None or status >= 500):
                span.set_status(Status(StatusCode.ERROR))
        span.end(self._ns(ended))
        if decision is not None:
            self._decisions.add(1, _key((n.DECISION, decision),
                                        (n.DECISION_REASON, decision_reason),
                                        (n.ROUTE, trace.route)))

    # --- model calls, comparisons ---

    def record_model_call(self, parent: Parent, call: ModelCall) -> SpanRef:
        """A finished model call: CLIENT span `{operation} {model}` plus the GenAI client
        metrics and the cost counter. Returns a parent for calls made inside it."""
        self._record_call_metrics(call)
        if not self.tracing:
            return SpanRef(trace_api.INVALID_SPAN_CONTEXT)
        kind = SpanKind.INTERNAL if call.in_process else SpanKind.CLIENT
        span = self.tracer.start_span(
            n.model_span_name(call.operation, call.request_model), self._context(parent),
            kind, attrs.model_call_attributes(call, self.semconv, self.capture_span),
            start_time=self._ns(call.start))
        if call.error_type is not None:
            span.set_status(Status(StatusCode.ERROR))
        if self.capture_event and span.is_recording():
            span.add_event(n.OPERATION_DETAILS_EVENT, attrs.content_attributes(call),
                           self._ns(call.end))
        span.end(self._ns(call.end))
        return SpanRef(span.get_span_context())

    def record_workflow(self, parent: Parent, workflow: ModelCall,
                        calls: Sequence[ModelCall]) -> SpanRef:
        """An orchestrator step (shadow or divert) and the model calls made inside it."""
        step = self.record_model_call(parent, workflow)
        for call in calls:
            self.record_model_call(step, call)
        return step

    def _record_call_metrics(self, call: ModelCall) -> None:
        point = attrs.model_metric_attributes(call)
        self._call_duration.record(max(0.0, call.end - call.start), point)
        if call.stream and call.time_to_first_chunk is not None:
            self._first_chunk.record(call.time_to_first_chunk, point)
        if call.input_tokens is not None:
            self._tokens.record(call.input_tokens, {**point, n.GEN_AI_TOKEN_TYPE: "input"})
        if call.output_tokens is not None:
            self._tokens.record(call.output_tokens, {**point, n.GEN_AI_TOKEN_TYPE: "output"})
        if call.cost_usd:
            self._cost.add(call.cost_usd, tuple(attrs.cost_metric_attributes(call).items()))

    def record_comparison(self, parent: Parent, comparison: Comparison) -> SpanRef:
        """A comparison: an INTERNAL `comparison` span (the SERVER span has usually ended
        by now, and ended spans take no events) carrying the divergence attributes and a
        `gen_ai.evaluation.result` event; plus the divergence metrics. The evidence (answer
        content) goes where content capture puts message content: on the span as
        `llm_shadow.divergence.evidence`, in the event's explanation, or both; nowhere
        without the opt-in."""
        point = attrs.comparison_metric_attributes(comparison)
        self._divergence.record(comparison.score, point)
        self._comparisons.add(1, tuple(point.items()))
        if not self.tracing:
            return SpanRef(trace_api.INVALID_SPAN_CONTEXT)
        now = time.monotonic()
        start = comparison.start if comparison.start is not None else now
        end = comparison.end if comparison.end is not None else max(start, now)
        span = self.tracer.start_span(
            n.COMPARISON_SPAN, self._context(parent), SpanKind.INTERNAL,
            attrs.comparison_attributes(comparison, self.capture_span),
            start_time=self._ns(start))
        span.add_event(n.EVALUATION_RESULT_EVENT,
                       attrs.evaluation_event_attributes(comparison, self.capture_event),
                       self._ns(end))
        span.end(self._ns(end))
        return SpanRef(span.get_span_context())

    def record_judgement(self, parent: Parent, judgement: Judgement) -> SpanRef:
        """The judge's verdict on a comparison (`parent`: the comparison's span): an
        INTERNAL `judge` span with a second `gen_ai.evaluation.result` event (name
        `llm_shadow.judge`), its model call as a child, and the verdict counter."""
        self._verdicts.add(1, tuple(attrs.judgement_metric_attributes(judgement).items()))
        if not self.tracing:
            if judgement.call is not None:
                self._record_call_metrics(judgement.call)
            return SpanRef(trace_api.INVALID_SPAN_CONTEXT)
        span = self.tracer.start_span(
            n.JUDGE_SPAN, self._context(parent), SpanKind.INTERNAL,
            attrs.judgement_attributes(judgement), start_time=self._ns(judgement.start))
        if judgement.error_type is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.add_event(n.EVALUATION_RESULT_EVENT,
                       attrs.judgement_event_attributes(judgement), self._ns(judgement.end))
        ref = SpanRef(span.get_span_context())
        if judgement.call is not None:
            self.record_model_call(ref, judgement.call)
        span.end(self._ns(judgement.end))
        return ref

    # --- counters and gauges ---

    def count_judge_skipped(self, reason: str, route: str | None = None) -> None:
        """A comparison chosen for the judge that was not graded (pool full, budget,
        too long, no key)."""
        self._judge_skipped.add(1, _key((n.JUDGE_SKIP_REASON, reason), (n.ROUTE, route)))

    def count_shadow_skipped(self, reason: str, route: str | None = None) -> None:
        """A shadow that was not run or not finished (pool full, budget, deadline, ...)."""
        self._skipped.add(1, _key((n.SHADOW_SKIP_REASON, reason), (n.ROUTE, route)))

    def count_divert_fallback(self, reason: str, route: str | None = None) -> None:
        """A diverted request answered by legacy after all; the reason's code is the
        label (`reason_code`), so the series stay few."""
        self._fallbacks.add(1, _key((n.FALLBACK_REASON, reason_code(reason)),
                                    (n.ROUTE, route)))

    def count_divert_cut(self, reason: str, route: str | None = None) -> None:
        """A diverted stream cut after its first byte went out (it cannot fall back)."""
        self._cuts.add(1, _key((n.DIVERT_CUT_REASON, reason), (n.ROUTE, route)))

    def observe_flags(self, callback: FlagCallback) -> None:
        """Report the flag snapshot's version (attribute: state) and age at each metric
        collection. `callback` must be cheap and must not touch Redis."""
        if not self._flag_callbacks:
            self._meter.create_observable_gauge(n.METRIC_FLAGS_VERSION, [self._observe_version],
                                                "1", "Flag snapshot version in use")
            self._meter.create_observable_gauge(n.METRIC_FLAGS_AGE, [self._observe_age],
                                                "s", "Age of the flag snapshot in use")
        self._flag_callbacks.append(callback)

    def _observe_drops(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {n.DROP_REASON: reason})
                for reason, count in self.providers.drops()]

    def _observe_version(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(flags.version, {n.FLAG_STATE: flags.state})
                for flags in self._flags()]

    def _observe_age(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(flags.age_seconds, {n.FLAG_STATE: flags.state})
                for flags in self._flags() if flags.age_seconds is not None]

    def _flags(self) -> list[FlagObservation]:
        out = []
        for callback in self._flag_callbacks:
            try:
                flags = callback()
            except Exception:  # a gauge callback must never break a scrape
                continue
            if flags is not None:
                out.append(flags)
        return out

    # --- lifecycle ---

    def flush(self, timeout: float | None = None) -> bool:
        """Export queued spans and collect metrics now (tests, and before a scrape-less
        exit); False if the bound was reached."""
        return self.providers.flush(self.shutdown_timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and stop the providers within `timeout` seconds (default: the configured
        shutdown bound). Recording afterwards is harmless and records nothing."""
        if self.closed:
            return True
        self.closed = True
        return self.providers.shutdown(self.shutdown_timeout if timeout is None else timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        """`close` without blocking the event loop."""
        return await asyncio.to_thread(self.close, timeout)

    # --- context and clocks ---

    def _incoming(self, headers: Sequence[tuple[bytes, bytes]]) -> Context | None:
        if not self._trust_incoming:
            return None
        carrier = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in headers if name in (b"traceparent", b"tracestate")}
        return _PROPAGATOR.extract(carrier) if "traceparent" in carrier else None

    def _context(self, parent: Parent) -> Context | None:
        if parent is None or not parent.context.is_valid:
            return None
        return trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent.context))

    def _ns(self, monotonic: float) -> int:
        return int(monotonic * 1e9) + self._offset_ns


def _key(*pairs: tuple[str, str | None]) -> Key:
    return tuple((name, value) for name, value in pairs if value)
