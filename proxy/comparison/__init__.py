"""Comparison of a legacy answer with the orchestrator's: answer extraction, structural
and text divergence, labels, and the noise floor.

Layer: pure core (no starlette, httpx, redis or opentelemetry). Runs off the request
path but on the same event loop, so every step is bounded (see `comparator.Limits`).

Typical use, once both answers are complete:

    policy = load_policy(settings.resolve(config.comparison.policy_file))
    legacy = extract_answer(api, legacy_body, content_type=..., content_encoding=...)
    candidate = extract_answer(api, rendered_orchestrator_body, content_type=...)
    result = compare(legacy, candidate, policy.for_route(route_prefix),
                     Limits.from_section(config.comparison))
    result.label, result.reason          # bounded: safe for metrics and spans
    result.evidence                      # answer content: only with content capture

Module map: `answer`, `stream`, `extract` (answers from bodies); `comparator` (score,
label, the decision); `rules` (what makes a difference decisive); `facts`, `quantity`,
`snippet`, `prose`, `lexicon` (a prose answer's facts); `agreement` (two answers'
facts compared); `jsondiff` (structure); `similarity`; `finding` (reasons and
evidence); `policy`; `noise` (the noise floor).
"""

from __future__ import annotations

from proxy.comparison.answer import Answer, ToolCall, normalise_finish
from proxy.comparison.comparator import (
    DIVERGENT,
    LABELS,
    Comparison,
    Label,
    Limits,
    compare,
    label_for,
    same_answer,
)
from proxy.comparison.extract import SHAPES, answer_from_document, extract_answer
from proxy.comparison.finding import REASONS, Reason
from proxy.comparison.noise import Excess, Proportion, excess_divergence, in_noise_sample
from proxy.comparison.policy import DivergencePolicy, RoutePolicy, load_policy, parse_policy
from proxy.comparison.stream import StreamAnswer, answer_from_stream

__all__ = [
    "DIVERGENT",
    "LABELS",
    "REASONS",
    "SHAPES",
    "Answer",
    "Comparison",
    "DivergencePolicy",
    "Excess",
    "Label",
    "Limits",
    "Proportion",
    "Reason",
    "RoutePolicy",
    "StreamAnswer",
    "ToolCall",
    "answer_from_document",
    "answer_from_stream",
    "compare",
    "excess_divergence",
    "extract_answer",
    "in_noise_sample",
    "label_for",
    "load_policy",
    "normalise_finish",
    "parse_policy",
    "same_answer",
]
