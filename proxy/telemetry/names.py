"""Every span, event, attribute and metric name the proxy emits: the one place to change
when the conventions move.

Layer: pure core (strings only).

Sources: the OpenTelemetry semantic conventions v1.41 (the last release holding GenAI;
every `gen_ai.*` name is *Development* status, only `error.type`, `server.*`, `http.*` and
`url.*` are Stable). The GenAI conventions have since moved to
open-telemetry/semantic-conventions-genai, where some names changed in unreleased work;
`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental` selects those (`Semconv`
below) following the conventions' transition plan. Only the names that differ live in
`Semconv`; the rest are plain constants.

Cost has no convention yet: `gen_ai.usage.cost.amount`/`.currency`/`.source` are the open
proposal semantic-conventions-genai#443 (not released; may change), emitted next to the
project's own `llm_shadow.cost.usd`. Project attributes share the `llm_shadow.` prefix and
use the glossary's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PREFIX: Final = "llm_shadow"
EVALUATION_NAME: Final = "llm_shadow.divergence"
JUDGE_EVALUATION_NAME: Final = "llm_shadow.judge"

# --- Stable shared attributes (HTTP, URL, server, error) ---
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_HEADER_PREFIX: Final = "http.request.header."
URL_PATH: Final = "url.path"
URL_QUERY: Final = "url.query"
URL_SCHEME: Final = "url.scheme"

# --- GenAI attributes (Development) ---
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
# Open proposal semantic-conventions-genai#443 (unreleased).
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"

TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
OPERATION_CHAT: Final = "chat"
OPERATION_TEXT_COMPLETION: Final = "text_completion"
OPERATION_EMBEDDINGS: Final = "embeddings"
OPERATION_INVOKE_WORKFLOW: Final = "invoke_workflow"

# --- Project attributes ---
REQUEST_ID: Final = "llm_shadow.request.id"
ROUTE: Final = "llm_shadow.route"
ROLE: Final = "llm_shadow.role"
DECISION: Final = "llm_shadow.decision"
DECISION_REASON: Final = "llm_shadow.decision.reason"
BUCKET: Final = "llm_shadow.bucket"
ANSWERED_BY: Final = "llm_shadow.answered_by"
CLIENT_GONE: Final = "llm_shadow.client_gone"
COST_USD: Final = "llm_shadow.cost.usd"
LATENCY_DELTA: Final = "llm_shadow.latency.delta"
DIVERGENCE_SCORE: Final = "llm_shadow.divergence.score"
DIVERGENCE_LABEL: Final = "llm_shadow.divergence.label"
DIVERGENCE_ABOVE_NOISE: Final = "llm_shadow.divergence.above_noise"
# Why the label (one of `proxy.comparison.finding.REASONS`: bounded, a metric label too).
DIVERGENCE_REASON: Final = "llm_shadow.divergence.reason"
# The differing tokens or paths (answer content: only with content capture opted in).
DIVERGENCE_EVIDENCE: Final = "llm_shadow.divergence.evidence"
NOISE_FLOOR: Final = "llm_shadow.noise_floor"
FLAG_VERSION: Final = "llm_shadow.flags.version"
FLAG_STATE: Final = "llm_shadow.flags.state"
FALLBACK_REASON: Final = "llm_shadow.fallback.reason"
SHADOW_SKIP_REASON: Final = "llm_shadow.shadow.skip_reason"
DIVERT_CUT_REASON: Final = "llm_shadow.divert.cut_reason"
USAGE_ESTIMATED: Final = "llm_shadow.usage.estimated"
STREAM_TRUNCATED: Final = "llm_shadow.stream.truncated"
DROP_REASON: Final = "llm_shadow.telemetry.drop_reason"
JUDGE_VERDICT: Final = "llm_shadow.judge.verdict"
JUDGE_AGREEMENT: Final = "llm_shadow.judge.agreement"
JUDGE_SKIP_REASON: Final = "llm_shadow.judge.skip_reason"

# Roles of a recorded call (`llm_shadow.role`):
#   legacy        the legacy upstream call whose answer the client received
#   shadow        a call made only to compare, its answer never reaches the client (the
#                 orchestrator in shadow mode, or the legacy call mirrored during a divert)
#   noise         the second legacy call of a noise sample (measures legacy's randomness)
#   orchestrator  a model call made by the orchestrator pipeline (its parent span's role
#                 says whether it served a shadow or a divert)
#   divert        the orchestrator answering a diverted request
#   judge         the optional judge's model call, grading a comparison
ROLES: Final = ("legacy", "shadow", "noise", "orchestrator", "divert", "judge")

# --- Spans and events ---
COMPARISON_SPAN: Final = "comparison"
JUDGE_SPAN: Final = "judge"
EVALUATION_RESULT_EVENT: Final = "gen_ai.evaluation.result"
OPERATION_DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"

# --- Metrics (instrument name, unit) ---
GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_COST: Final = "llm_shadow.cost.usd"
METRIC_COMPARISONS: Final = "llm_shadow.comparisons"
METRIC_DIVERGENCE: Final = "llm_shadow.divergence.score"
METRIC_DECISIONS: Final = "llm_shadow.decisions"
METRIC_SHADOW_SKIPPED: Final = "llm_shadow.shadow.skipped"
METRIC_DIVERT_FALLBACKS: Final = "llm_shadow.divert.fallbacks"
METRIC_DIVERT_STREAMS_CUT: Final = "llm_shadow.divert.streams_cut"
METRIC_FLAGS_VERSION: Final = "llm_shadow.flags.version"
METRIC_FLAGS_AGE: Final = "llm_shadow.flags.age"
METRIC_SPANS_DROPPED: Final = "llm_shadow.telemetry.spans.dropped"
METRIC_JUDGE_VERDICTS: Final = "llm_shadow.judge.verdicts"
METRIC_JUDGE_SKIPPED: Final = "llm_shadow.judge.skipped"

# Bucket boundaries from the conventions (v1.41 metrics tables).
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                           10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
                        4194304, 16777216, 67108864)
DIVERGENCE_BUCKETS: Final = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True, slots=True)
class Semconv:
    """The names that differ between the released conventions and the latest draft."""

    cache_creation_input_tokens: str
    operation_duration: str
    time_to_first_chunk: str


RELEASED: Final = Semconv(
    cache_creation_input_tokens="gen_ai.usage.cache_creation.input_tokens",
    operation_duration="gen_ai.client.operation.duration",
    time_to_first_chunk="gen_ai.client.operation.time_to_first_chunk",
)
# semantic-conventions-genai, unreleased: cache_creation renamed cache_write (changelog
# 440); inference gets its own duration metrics. `gen_ai.client.token.usage` is kept in
# both, because the draft has not settled on its replacement.
LATEST_EXPERIMENTAL: Final = Semconv(
    cache_creation_input_tokens="gen_ai.usage.cache_write.input_tokens",
    operation_duration="gen_ai.client.inference.duration",
    time_to_first_chunk="gen_ai.client.inference.time_to_first_chunk",
)


def semconv(latest_experimental: bool) -> Semconv:
    return LATEST_EXPERIMENTAL if latest_experimental else RELEASED


def model_span_name(operation: str, model: str | None) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, as the conventions ask."""
    return f"{operation} {model}" if model else operation


def server_span_name(method: str, route: str | None) -> str:
    """`{method} {route}` (HTTP conventions); the route is low-cardinality by design."""
    return f"{method} {route}" if route else method
