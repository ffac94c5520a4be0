"""The records the request path and the background tasks hand to telemetry.

Layer: pure core. Plain frozen dataclasses with primitive fields, so the proxy's own
records (exchange, usage, comparison results, orchestrator call records) map onto them in
one place (the caller) and telemetry depends on nothing else in the project.

Times are `time.monotonic()` seconds, the clock the request path already uses; the
recorder converts them to wall-clock nanoseconds with one anchor taken at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.telemetry.names import EVALUATION_NAME, JUDGE_EVALUATION_NAME


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One call to a model (legacy upstream, noise sample, orchestrator model, judge), recorded
    after it finished as a CLIENT span plus the GenAI client metrics.

    `error_type` must be a code (`timeout`, `rate_limit_exceeded`, `429`, a class name);
    anything that looks like a message is recorded as `_OTHER`. The message fields are
    JSON strings in the conventions' schema and are recorded only when content capture
    is on. `in_process=True` makes it an INTERNAL span (an in-process pipeline step).

    `cost_usd` belongs on the call that incurred it: a span that only groups other calls
    (the orchestrator's workflow) carries none, so the cost counter never counts twice.
    """

    role: str
    operation: str
    provider: str
    request_model: str | None
    start: float
    end: float
    route: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    stream: bool = False
    time_to_first_chunk: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    usage_estimated: bool = False
    stream_truncated: bool = False
    finish_reasons: tuple[str, ...] = ()
    error_type: str | None = None
    cost_usd: float | None = None
    cost_source: str = "local"
    in_process: bool = False
    input_messages: str | None = None
    output_messages: str | None = None
    system_instructions: str | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """The divergence between the legacy answer and the orchestrator answer.

    `score` is 0 (identical) to 1 (unrelated); `label` is identical, equivalent, minor or
    major. `reason` is a code from a small fixed set (`fact_changed`, `text_edit`, ...):
    recorded always, a metric label too. `evidence` (the differing tokens or paths, such as
    `Paris → Lyon`) quotes the answers: it is recorded only where content capture is on.
    The evaluation event's explanation is the reason (then the evidence, with capture).
    `latency_delta` is orchestrator minus legacy, in seconds.
    """

    route: str
    score: float
    label: str
    reason: str | None = None
    evidence: tuple[str, ...] = ()
    response_id: str | None = None
    noise_floor: float | None = None
    above_noise: bool | None = None
    latency_delta: float | None = None
    evaluation_name: str = EVALUATION_NAME
    error_type: str | None = None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    """The judge's verdict on one comparison (or why there is none), recorded as a
    `judge` span under the comparison with a second `gen_ai.evaluation.result` event,
    and the judge's model call (role `judge`) beneath it.

    `verdict` is one of the judge's classes, or None when the judge failed
    (`error_type`: `timeout`, `invalid_verdict`, an HTTP or transport code).
    `rules_label` is the comparison's label, `agreement` how the two stand
    (`agree`, `rules_lenient`, `rules_strict`). `explanation` is the judge's own
    sentence about the answers: content, so the caller sets it only when content
    capture is opted in.
    """

    route: str
    rules_label: str
    verdict: str | None
    agreement: str | None
    start: float
    end: float
    explanation: str | None = None
    error_type: str | None = None
    call: ModelCall | None = None
    evaluation_name: str = JUDGE_EVALUATION_NAME


@dataclass(frozen=True, slots=True)
class FlagObservation:
    """What the flag gauge reports at each collection (from the lead's callback)."""

    version: int
    state: str
    age_seconds: float | None = None
