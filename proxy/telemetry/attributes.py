"""Attribute sets for spans, events and metrics, built from the records.

Layer: pure core. No OpenTelemetry import: the recorder hands these dictionaries to the
SDK, and tests check them without one. Every value that came from a request passes
through `proxy.telemetry.redaction`; message content appears only when the caller says
capture is on. Metric attribute sets are a strict, low-cardinality subset (no request
ids, paths or response ids).
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.telemetry import names as n
from proxy.telemetry.records import Comparison, Judgement, ModelCall
from proxy.telemetry.redaction import safe_error_type, safe_host, split_path

Value = str | bool | int | float | Sequence[str]
Attributes = dict[str, Value]

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
                           "TRACE", "PATCH"})
MAX_EXPLANATION = 512


def http_method(method: str) -> str:
    """The method, or `_OTHER` for anything outside the HTTP standard set (conventions)."""
    return method if method in KNOWN_METHODS else "_OTHER"


def server_attributes(method: str, route: str | None, target: str, request_id: str,
                      server_address: str | None, server_port: int | None,
                      scheme: str) -> Attributes:
    """The SERVER span's attributes known at its start (they matter for sampling)."""
    path, query = split_path(target)
    attrs: Attributes = {n.HTTP_REQUEST_METHOD: http_method(method), n.URL_PATH: path,
                         n.URL_SCHEME: scheme, n.REQUEST_ID: request_id}
    if route:
        attrs[n.HTTP_ROUTE] = route
    if query:
        attrs[n.URL_QUERY] = query
    _server(attrs, server_address, server_port)
    return attrs


def outcome_attributes(status: int | None, *, decision: str | None,
                       decision_reason: str | None, bucket: int | None,
                       answered_by: str | None, error_type: str | None,
                       fallback_reason: str | None, shadow_skip_reason: str | None,
                       flag_version: int | None, flag_state: str | None,
                       client_gone: bool, cut_reason: str | None = None) -> Attributes:
    """What the SERVER span learns by the end of the request."""
    attrs: Attributes = {}
    if status is not None:
        attrs[n.HTTP_RESPONSE_STATUS_CODE] = status
    error = server_error_type(status, error_type)
    optional = ((n.ERROR_TYPE, error), (n.DECISION, decision),
                (n.DECISION_REASON, decision_reason), (n.BUCKET, bucket),
                (n.ANSWERED_BY, answered_by), (n.FALLBACK_REASON, fallback_reason),
                (n.SHADOW_SKIP_REASON, shadow_skip_reason), (n.FLAG_VERSION, flag_version),
                (n.FLAG_STATE, flag_state), (n.DIVERT_CUT_REASON, cut_reason))
    for key, value in optional:
        if value is not None:
            attrs[key] = value
    if client_gone:
        attrs[n.CLIENT_GONE] = True
    return attrs


def server_error_type(status: int | None, error_type: str | None) -> str | None:
    """An explicit code wins; otherwise a 5xx status is the error type (HTTP conventions)."""
    if error_type is not None:
        return safe_error_type(error_type)
    if status is not None and status >= 500:
        return str(status)
    return None


def model_call_attributes(call: ModelCall, semconv: n.Semconv, content: bool) -> Attributes:
    """The CLIENT span's attributes: GenAI conventions plus the project's."""
    attrs: Attributes = {n.GEN_AI_OPERATION_NAME: call.operation,
                         n.GEN_AI_PROVIDER_NAME: call.provider, n.ROLE: call.role}
    if call.request_model:
        attrs[n.GEN_AI_REQUEST_MODEL] = call.request_model
    _server(attrs, call.server_address, call.server_port)
    if call.stream:
        attrs[n.GEN_AI_REQUEST_STREAM] = True
        if call.time_to_first_chunk is not None:
            attrs[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = call.time_to_first_chunk
    _optional(attrs, call, semconv)
    if content:
        attrs.update(content_attributes(call))
    return attrs


def _optional(attrs: Attributes, call: ModelCall, semconv: n.Semconv) -> None:
    pairs = ((n.ROUTE, call.route), (n.GEN_AI_RESPONSE_MODEL, call.response_model),
             (n.GEN_AI_RESPONSE_ID, call.response_id),
             (n.GEN_AI_USAGE_INPUT_TOKENS, call.input_tokens),
             (n.GEN_AI_USAGE_OUTPUT_TOKENS, call.output_tokens),
             (n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, call.cache_read_input_tokens),
             (semconv.cache_creation_input_tokens, call.cache_creation_input_tokens),
             (n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, call.reasoning_output_tokens),
             (n.ERROR_TYPE, safe_error_type(call.error_type)))
    for key, value in pairs:
        if value is not None:
            attrs[key] = value
    if call.finish_reasons:
        attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = list(call.finish_reasons)
    if call.usage_estimated:
        attrs[n.USAGE_ESTIMATED] = True
    if call.stream_truncated:
        attrs[n.STREAM_TRUNCATED] = True
    if call.cost_usd is not None:
        attrs[n.COST_USD] = call.cost_usd
        attrs[n.GEN_AI_USAGE_COST_AMOUNT] = call.cost_usd
        attrs[n.GEN_AI_USAGE_COST_CURRENCY] = "USD"
        attrs[n.GEN_AI_USAGE_COST_SOURCE] = call.cost_source


def content_attributes(call: ModelCall) -> Attributes:
    """Prompts and completions: only ever called when the operator opted in."""
    attrs: Attributes = {}
    for key, value in ((n.GEN_AI_INPUT_MESSAGES, call.input_messages),
                       (n.GEN_AI_OUTPUT_MESSAGES, call.output_messages),
                       (n.GEN_AI_SYSTEM_INSTRUCTIONS, call.system_instructions)):
        if value is not None:
            attrs[key] = value
    return attrs


def model_metric_attributes(call: ModelCall) -> Attributes:
    """The GenAI client metrics' attributes (conventions), plus role and route."""
    attrs: Attributes = {n.GEN_AI_OPERATION_NAME: call.operation,
                         n.GEN_AI_PROVIDER_NAME: call.provider, n.ROLE: call.role}
    for key, value in ((n.GEN_AI_REQUEST_MODEL, call.request_model),
                       (n.GEN_AI_RESPONSE_MODEL, call.response_model),
                       (n.ROUTE, call.route), (n.ERROR_TYPE, safe_error_type(call.error_type))):
        if value is not None:
            attrs[key] = value
    _server(attrs, call.server_address, call.server_port)
    return attrs


def cost_metric_attributes(call: ModelCall) -> Attributes:
    attrs: Attributes = {n.ROLE: call.role, n.GEN_AI_PROVIDER_NAME: call.provider,
                         n.GEN_AI_USAGE_COST_SOURCE: call.cost_source}
    if call.request_model:
        attrs[n.GEN_AI_REQUEST_MODEL] = call.request_model
    if call.route:
        attrs[n.ROUTE] = call.route
    return attrs


def comparison_attributes(comparison: Comparison, content: bool = False) -> Attributes:
    """The comparison span's attributes: divergence against the noise floor, and why;
    with `content` (capture opted in for spans) the evidence too."""
    attrs: Attributes = {n.ROUTE: comparison.route,
                         n.DIVERGENCE_SCORE: comparison.score,
                         n.DIVERGENCE_LABEL: comparison.label}
    for key, value in ((n.DIVERGENCE_REASON, safe_error_type(comparison.reason)),
                       (n.NOISE_FLOOR, comparison.noise_floor),
                       (n.DIVERGENCE_ABOVE_NOISE, comparison.above_noise),
                       (n.LATENCY_DELTA, comparison.latency_delta),
                       (n.GEN_AI_RESPONSE_ID, comparison.response_id),
                       (n.ERROR_TYPE, safe_error_type(comparison.error_type))):
        if value is not None:
            attrs[key] = value
    if content and comparison.evidence:
        attrs[n.DIVERGENCE_EVIDENCE] = list(comparison.evidence)
    return attrs


def explanation(comparison: Comparison, content: bool) -> str | None:
    """`gen_ai.evaluation.explanation`: the reason (a code, never content), followed,
    with `content` (capture opted in for events), by the evidence:
    `fact_changed: Paris → Lyon; 2.49 → 3.99`."""
    head = safe_error_type(comparison.reason)
    if content and comparison.evidence:
        evidence = "; ".join(comparison.evidence)
        return f"{head}: {evidence}" if head else evidence
    return head


def evaluation_event_attributes(comparison: Comparison, content: bool = False) -> Attributes:
    """The `gen_ai.evaluation.result` event (the conventions' attribute set: name, score
    value and label, explanation, response id, error type)."""
    attrs: Attributes = {n.GEN_AI_EVALUATION_NAME: comparison.evaluation_name,
                         n.GEN_AI_EVALUATION_SCORE_VALUE: comparison.score,
                         n.GEN_AI_EVALUATION_SCORE_LABEL: comparison.label}
    text = explanation(comparison, content)
    if text:
        attrs[n.GEN_AI_EVALUATION_EXPLANATION] = text[:MAX_EXPLANATION]
    if comparison.response_id:
        attrs[n.GEN_AI_RESPONSE_ID] = comparison.response_id
    error = safe_error_type(comparison.error_type)
    if error:
        attrs[n.ERROR_TYPE] = error
    return attrs


def comparison_metric_attributes(comparison: Comparison) -> Attributes:
    """Route, label, reason (a fixed set: bounded) and whether above the noise floor."""
    attrs: Attributes = {n.ROUTE: comparison.route, n.DIVERGENCE_LABEL: comparison.label}
    reason = safe_error_type(comparison.reason)
    if reason is not None:
        attrs[n.DIVERGENCE_REASON] = reason
    if comparison.above_noise is not None:
        attrs[n.DIVERGENCE_ABOVE_NOISE] = comparison.above_noise
    return attrs


def _server(attrs: Attributes, address: str | None, port: int | None) -> None:
    if address:
        attrs[n.SERVER_ADDRESS] = safe_host(address)
        if port:
            attrs[n.SERVER_PORT] = port


def judgement_attributes(judgement: Judgement) -> Attributes:
    """The `judge` span: the verdict beside the rules' label, and how they stand."""
    attrs: Attributes = {n.ROUTE: judgement.route, n.DIVERGENCE_LABEL: judgement.rules_label}
    for key, value in ((n.JUDGE_VERDICT, judgement.verdict),
                       (n.JUDGE_AGREEMENT, judgement.agreement),
                       (n.ERROR_TYPE, safe_error_type(judgement.error_type))):
        if value is not None:
            attrs[key] = value
    return attrs


def judgement_event_attributes(judgement: Judgement) -> Attributes:
    """The judge's `gen_ai.evaluation.result` event: the verdict is a class, so it is
    the score label and there is no score value; a failure carries `error.type`."""
    attrs: Attributes = {n.GEN_AI_EVALUATION_NAME: judgement.evaluation_name}
    if judgement.verdict is not None:
        attrs[n.GEN_AI_EVALUATION_SCORE_LABEL] = judgement.verdict
    if judgement.explanation:
        attrs[n.GEN_AI_EVALUATION_EXPLANATION] = judgement.explanation[:MAX_EXPLANATION]
    error = safe_error_type(judgement.error_type)
    if error:
        attrs[n.ERROR_TYPE] = error
    return attrs


def judgement_metric_attributes(judgement: Judgement) -> Attributes:
    attrs: Attributes = {n.ROUTE: judgement.route, n.DIVERGENCE_LABEL: judgement.rules_label,
                         n.JUDGE_VERDICT: judgement.verdict or "none"}
    if judgement.agreement is not None:
        attrs[n.JUDGE_AGREEMENT] = judgement.agreement
    error = safe_error_type(judgement.error_type)
    if error:
        attrs[n.ERROR_TYPE] = error
    return attrs
