"""Comparing two answers: what changed (a reason and its evidence), how much (a score in
[0, 1] and its parts), and the label.

Layer: pure core. Comparators (each gives a divergence in [0, 1]):

- `text`: rapidfuzz similarity of the answer texts after markdown, courtesy sentences
  and number formats are taken out (`proxy.comparison.rules.prose`);
- `json`: instead of `text` when both answers are JSON: field-level structural diff
  (`proxy.comparison.jsondiff`), key order ignored, `content_ignore_keys` skipped;
  for a route whose wire format is unknown, the whole bodies are diffed this way;
- `tool_calls`: 1 when the number of calls or the multiset of names differs, else the
  mean structural divergence of the arguments (calls paired by name, equal arguments
  first, so the order of parallel calls does not matter);
- `finish_reason`: 0 or 1 on the normalised reasons (`end_turn` == `stop`);
- `envelope`: structural diff of the rest of the two bodies (same wire format only,
  never for streams), with the policy's `ignore_keys` (ids, created, fingerprints,
  usage, model, ...) and the answer-bearing fields removed;
- `embedding`: 1 - mean cosine similarity;
- `error`: either answer is an error (0 when both are the same error).

The label, in this order (`decide`): `identical` when the canonical answers are equal
(reordered JSON keys, `2.5`/`2.50` or different ids alone are identical); `major` with
score 1.0 when a decisive rule fires on a comparator whose weight is above 0 (a changed
fact, JSON value or key, tool call, finish class, format, an empty answer, a refusal,
an error: `proxy.comparison.rules`); else the route's thresholds on
score = max(weight x divergence), raised to at least `minor` when facts were added or
left out, capped at `minor` when both answers share facts and none contradicts, and
`equivalent` for two refusals. The reason is the first decisive finding in
`proxy.comparison.finding.REASONS` order, else what the score measured (`text_edit`,
`embedding_changed`, `envelope_changed`).

Cost: bounded by `Limits` (text cut at `max_text_chars`, JSON walk cut at
`max_json_nodes`, embeddings at 200 000 floats, JSON answers over 1 MiB compared as
text); past a limit the comparison is marked `truncated` rather than taking longer.
Prose costs most (its facts are extracted on both sides): about 0.7-1 ms for a pair of
1 KB answers and 6-15 ms at the 10 000-character bound on a loaded 2-core box
(`python bench/divergence.py`); a small JSON answer about 0.05 ms, a 5 000-node JSON
answer 4 ms. Extracting the answers (one `orjson.loads` of each body) comes on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from proxy.comparison.answer import Answer
from proxy.comparison.finding import (
    AT_LEAST_MINOR,
    DECISIVE,
    Finding,
    Reason,
    bounded,
    pick,
)
from proxy.comparison.jsondiff import JsonDiff, json_diff
from proxy.comparison.policy import RoutePolicy, Thresholds
from proxy.comparison.rules import (
    emptiness,
    finish_change,
    has_content,
    json_findings,
    prose,
    prose_findings,
    prose_judge,
    tool_findings,
)
from proxy.comparison.similarity import embedding_divergence
from proxy.config.comparison import ComparisonSection

Label = Literal["identical", "equivalent", "minor", "major"]
LABELS: tuple[Label, ...] = ("identical", "equivalent", "minor", "major")
DIVERGENT: frozenset[Label] = frozenset({"minor", "major"})

ENVELOPE_ANSWER_KEYS: Mapping[str, frozenset[str]] = {
    "openai_chat": frozenset({"content", "tool_calls", "function_call", "finish_reason",
                              "refusal"}),
    "anthropic_messages": frozenset({"content", "stop_reason", "stop_sequence"}),
    "openai_responses": frozenset({"output", "status", "incomplete_details",
                                   "output_text"}),
    "openai_embeddings": frozenset({"data"}),
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int = 10_000
    max_json_nodes: int = 10_000

    @classmethod
    def from_section(cls, section: ComparisonSection) -> Limits:
        return cls(section.max_text_chars, section.max_json_nodes)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result: `label` and `score` (what the ramp and the report count), `parts`
    (each comparator's divergence), `reasons` (short descriptions without answer
    content), `truncated`, and the one `reason` from `proxy.comparison.finding.REASONS`
    with its `evidence` (answer content: shown only with content capture opted in;
    `as_dict` leaves it out unless asked)."""

    label: Label
    score: float
    parts: Mapping[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    truncated: bool = False
    reason: Reason | Literal[""] = ""
    evidence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.reason:
            object.__setattr__(self, "reason",
                               "identical" if self.label == "identical" else "text_edit")

    @property
    def divergent(self) -> bool:
        return self.label in DIVERGENT

    def as_dict(self, *, evidence: bool = False) -> dict[str, Any]:
        data = {"label": self.label, "score": self.score, "reason": self.reason,
                "parts": dict(self.parts), "reasons": list(self.reasons),
                "truncated": self.truncated}
        if evidence:
            data["evidence"] = list(self.evidence)
        return data


def label_for(score: float, identical: bool, thresholds: Thresholds) -> Label:
    if identical:
        return "identical"
    if score <= thresholds.equivalent:
        return "equivalent"
    if score <= thresholds.minor:
        return "minor"
    return "major"


_RANK: dict[Label, int] = {label: rank for rank, label in enumerate(LABELS)}


class _Run:
    """One comparison's working state: parts found so far, findings, reasons,
    truncation."""

    def __init__(self, policy: RoutePolicy, limits: Limits):
        self.policy = policy
        self.limits = limits
        self.parts: dict[str, float] = {}
        self.reasons: list[str] = []
        self.findings: list[Finding] = []
        self.facts_agree = False
        self.both_refuse = False
        self.reworded = False
        self.cut = False
        self.judge = prose_judge(max_chars=limits.max_text_chars,
                                 case_sensitive=policy.case_sensitive,
                                 tolerance=policy.number_tolerance,
                                 facts=policy.prose_facts)

    def diff(self, a: Any, b: Any, ignore: frozenset[str], *, content: bool = True) -> JsonDiff:
        result = json_diff(a, b, ignore_keys=ignore,
                           missing_equals_empty=self.policy.missing_equals_empty,
                           max_nodes=self.limits.max_json_nodes,
                           max_chars=self.limits.max_text_chars,
                           tolerance=self.policy.number_tolerance if content else 0.0,
                           sets=self.policy.json_sets if content else frozenset(),
                           prose=self.judge if content else None)
        self.cut = self.cut or result.truncated
        return result

    def content(self, a: Answer, b: Answer) -> None:
        if a.embeddings or b.embeddings:
            value, cut = embedding_divergence(a.embeddings, b.embeddings)
            self.parts["embedding"], self.cut = value, self.cut or cut
            return
        self.add(emptiness(a, b))
        if a.is_json and b.is_json:
            self.json_content(a, b)
        elif self.prose_applies(a, b):
            self.prose(a, b)
        if a.tool_calls or b.tool_calls:
            value, found = tool_findings(a.tool_calls, b.tool_calls, self.tool_diff)
            self.parts["tool_calls"] = value
            self.findings += found
            if found:
                self.reasons.append("tool calls differ")
        if a.finish_reason != b.finish_reason:
            self.parts["finish_reason"] = 1.0
            self.add(finish_change(a, b))
            self.reasons.append(f"finish reason {a.finish_reason} vs {b.finish_reason}")
        elif a.finish_reason is not None:
            self.parts["finish_reason"] = 0.0

    def prose_applies(self, a: Answer, b: Answer) -> bool:
        if not (a.text or b.text):
            return False
        # Beside tool calls on both sides, a text on one side only is a preamble
        # ("I'll look that up"): not part of the answer.
        return not (a.tool_calls and b.tool_calls and not (a.text.strip() and b.text.strip()))

    def json_content(self, a: Answer, b: Answer) -> None:
        result = self.diff(a.content_json, b.content_json, self.policy.content_ignore_keys)
        self.parts["json"] = round(result.fraction, 6)
        self.findings += json_findings(result)
        if result.paths:
            self.reasons.append("JSON answer differs at " + ", ".join(result.paths[:3]))
        self.facts_agree = not result.counts.get("value") and not result.counts.get(
            "missing") and not result.counts.get("added")

    def prose(self, a: Answer, b: Answer) -> None:
        text_a, text_b = a.text, b.text
        if a.truncated != b.truncated:  # compare the complete one on the cut one's length
            shorter = min(len(text_a), len(text_b))
            limit = int(shorter * 1.1) + 20
            text_a, text_b = text_a[:limit], text_b[:limit]
        result = prose(text_a, text_b, max_chars=self.limits.max_text_chars,
                       case_sensitive=self.policy.case_sensitive,
                       tolerance=self.policy.number_tolerance,
                       facts=self.policy.prose_facts, a_cut=a.truncated,
                       b_cut=b.truncated)
        self.cut = self.cut or result.cut
        self.parts["text"] = result.divergence
        found = prose_findings(result)
        self.findings += found
        self.facts_agree = result.facts_agree
        self.both_refuse = result.a.refusal and result.b.refusal
        self.reworded = result.reworded
        if a.is_json != b.is_json and has_content(a) and has_content(b):
            side = "legacy" if a.is_json else "orchestrator"
            self.add(Finding("format_changed", "text", (f"only the {side} answer is JSON",)))
        if found:
            self.reasons.append("prose differs: " + ", ".join(f.reason for f in found))
        elif a.is_json != b.is_json:
            self.reasons.append("only one answer is JSON")

    def tool_diff(self, a: object, b: object) -> JsonDiff:
        return self.diff(a, b, self.policy.content_ignore_keys)

    def add(self, finding: Finding | None) -> None:
        if finding is not None:
            self.findings.append(finding)

    def envelope(self, a: Answer, b: Answer) -> None:
        if a.document is None or b.document is None or a.api != b.api:
            return
        if a.api is None:  # unknown wire format: the whole body is the answer
            result = self.diff(a.document, b.document, self.policy.ignore_keys)
            self.parts["json"] = round(result.fraction, 6)
            self.findings += json_findings(result)
        else:
            ignore = self.policy.ignore_keys | ENVELOPE_ANSWER_KEYS.get(a.api, frozenset())
            result = self.diff(a.document, b.document, ignore, content=False)
            self.parts["envelope"] = round(result.fraction, 6)
        if result.paths:
            self.reasons.append("body differs at " + ", ".join(result.paths[:3]))

    def decide(self, identical: bool) -> tuple[Label, float, Reason, tuple[str, ...]]:
        weights = self.policy.weights
        score = round(max((weights.of(k) * v for k, v in self.parts.items()), default=0.0), 6)
        if identical:
            return "identical", score, "identical", ()
        active = [f for f in self.findings if weights.of(f.comparator) > 0]
        decisive = [f for f in active if f.reason in DECISIVE]
        chosen = pick(decisive) or pick(f for f in active if f.reason in AT_LEAST_MINOR)
        evidence = bounded(e for f in sorted(active, key=lambda f: f is not chosen)
                           for e in f.evidence)
        if decisive and chosen is not None:
            return "major", 1.0, chosen.reason, evidence
        if self.both_refuse:  # two refusals: what each says while refusing is moot
            return "equivalent", score, "refusal", ()
        label = label_for(score, False, self.policy.thresholds)
        if self.reworded and label == "equivalent":
            label = "minor"  # content words replaced: not the same answer in other form
        if self.facts_agree and label == "major":
            label = "minor"  # shared facts, none contradicted: not a major change
        if chosen is not None:
            label = max(label, "minor", key=_RANK.__getitem__)
            return label, score, chosen.reason, evidence
        return label, score, self._edit_reason(), evidence

    def _edit_reason(self) -> Reason:
        parts = self.parts
        if parts.get("embedding"):
            return "embedding_changed"
        if any(parts.get(k) for k in ("text", "json", "tool_calls", "finish_reason")):
            return "text_edit"
        return "envelope_changed" if parts.get("envelope") else "text_edit"


def compare(legacy: Answer, candidate: Answer, policy: RoutePolicy | None = None,
            limits: Limits | None = None) -> Comparison:
    """Compare the legacy answer with the orchestrator's (or with a legacy resample, for
    the noise floor) under one route's policy."""
    policy = policy or RoutePolicy()
    run = _Run(policy, limits or Limits())
    if legacy.error or candidate.error:
        run.parts["error"] = 0.0 if legacy.error == candidate.error else 1.0
        run.reasons.append(f"error {legacy.error} vs {candidate.error}")
        if legacy.error != candidate.error:
            change = f"error: {legacy.error or '(none)'} → {candidate.error or '(none)'}"
            run.add(Finding("error", "error", (change,)))
    else:
        run.content(legacy, candidate)
    run.envelope(legacy, candidate)
    if legacy.truncated or candidate.truncated:
        run.reasons.append("an answer is incomplete (stream cut or tee limit)")
    identical = (legacy.canonical() == candidate.canonical()
                 and not run.parts.get("envelope") and not run.parts.get("json"))
    label, score, reason, evidence = run.decide(identical)
    return Comparison(label, score, run.parts, tuple(run.reasons),
                      run.cut or legacy.truncated or candidate.truncated, reason, evidence)


def same_answer(a: Answer, b: Answer, *, threshold: float,
                policy: RoutePolicy | None = None) -> bool:
    """Whether two answers agree, by the same rules as `compare`: no changed, missing
    or added fact, JSON value or key, tool call, finish class, refusal or emptiness,
    and a similarity of at least `threshold` (0..1) between their texts. The
    orchestrator's merge groups model answers with this, so two answers that differ on
    one fact never count as agreeing."""
    result = compare(a, b, policy)
    if result.reason == "identical":
        return True
    if result.reason != "text_edit":
        return False
    return max(result.parts.values(), default=0.0) <= 1.0 - threshold
