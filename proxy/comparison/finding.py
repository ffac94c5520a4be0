"""Why two answers got their label: the fixed set of reasons, and the bounded evidence.

Layer: pure core. Every `Comparison` carries exactly one `reason` from `REASONS` (a
bounded label set, safe as a metric label) and `evidence`: the differing tokens or
paths (`Paris → Lyon`, `$.price: 2.49 → 3.99`), at most `MAX_EVIDENCE` items of at most
`MAX_ITEM` characters. Evidence quotes the answers, so it is content: the caller shows
it only where content capture is opted in; the reason never quotes anything.

Reasons, in the order that picks one when several apply (the first decides):

- `error` (major): one side is an error, or the errors differ;
- `empty` (major): one answer is empty (no text, no tool call), the other is not;
- `refusal` (major; equivalent when both refuse): one answer refuses, the other answers;
- `tool_call_changed` (major): a tool call added, removed, renamed, or an argument changed;
- `finish_changed` (major): finish reasons in different classes (stop, length,
  tool_calls, content_filter, ...);
- `format_changed` (major): one answer is JSON, the other is not;
- `json_key_missing` (major): a key or array item of the legacy JSON answer is missing;
- `json_key_added` (major): the orchestrator's JSON answer has a key or item legacy lacks;
- `json_value_changed` (major): a JSON value changed (beyond the route's tolerance);
- `fact_changed` (major): a prose fact changed: number, money, date, time, unit, name,
  quote, code, link, negation, yes/no;
- `fact_missing` (minor at least): the orchestrator leaves out facts legacy gave;
- `fact_added` (minor at least): the orchestrator states facts legacy did not;
- `embedding_changed` (by score): embeddings differ (cosine);
- `text_edit` (by score): the same facts, worded differently: similarity decides;
- `envelope_changed` (by score): only the response envelope differs;
- `identical` (identical): the canonical answers are equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

Reason = Literal[
    "error", "empty", "refusal", "tool_call_changed", "finish_changed", "format_changed",
    "json_key_missing", "json_key_added", "json_value_changed", "fact_changed",
    "fact_missing", "fact_added", "embedding_changed", "text_edit", "envelope_changed",
    "identical",
]
REASONS: tuple[Reason, ...] = (
    "error", "empty", "refusal", "tool_call_changed", "finish_changed", "format_changed",
    "json_key_missing", "json_key_added", "json_value_changed", "fact_changed",
    "fact_missing", "fact_added", "embedding_changed", "text_edit", "envelope_changed",
    "identical",
)
# Reasons that make a label `major` by themselves (when their comparator's weight > 0).
DECISIVE: frozenset[Reason] = frozenset({
    "error", "empty", "refusal", "tool_call_changed", "finish_changed", "format_changed",
    "json_key_missing", "json_key_added", "json_value_changed", "fact_changed",
})
# Reasons that make a label at least `minor`.
AT_LEAST_MINOR: frozenset[Reason] = frozenset({"fact_missing", "fact_added"})

MAX_EVIDENCE = 5
MAX_ITEM = 120
MAX_VALUE = 40


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired: its reason, the comparator whose weight gates it, and what
    it saw."""

    reason: Reason
    comparator: str
    evidence: tuple[str, ...] = ()


def pick(findings: Iterable[Finding]) -> Finding | None:
    """The finding whose reason comes first in `REASONS`."""
    return min(findings, key=lambda f: REASONS.index(f.reason), default=None)


def bounded(items: Iterable[str]) -> tuple[str, ...]:
    """At most `MAX_EVIDENCE` distinct items of at most `MAX_ITEM` characters."""
    out: list[str] = []
    for item in items:
        item = " ".join(item.split())
        if len(item) > MAX_ITEM:
            item = item[:MAX_ITEM - 1] + "…"
        if item and item not in out:
            out.append(item)
        if len(out) == MAX_EVIDENCE:
            break
    return tuple(out)


def show(value: Any) -> str:
    """A JSON value for evidence: compact, cut at `MAX_VALUE` characters."""
    if value is None:
        text = "null"
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"
