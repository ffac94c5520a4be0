"""A divergent pair kept for people to read: the two answers side by side, the label, the
reason and the evidence, and the ids that lead to the trace.

Layer: pure core. Built by the comparer only when the operator opted in to content
capture and `comparison.keep_examples` is above 0, and only for `major` and `minor`
pairs: an example quotes both answers, so it is content, like the prompts and
completions on spans.

What is kept, per side: the answer as a person would read it (the text; a JSON answer
as indented JSON with sorted keys, so the two sides line up; each tool call as
`→ name {arguments}`; an error as `[error] code`), with the finish reason apart.

Credentials are redacted with the telemetry's one rule (`proxy.telemetry.redaction`):
values under a credential-like name (`api_key`, `authorization`, `password`, ...) in
JSON answers and tool-call arguments, `name: value` / `name=value` pairs with such a
name in text, user info and credential-like query values in URLs; evidence about a
credential-like JSON path shows neither value, and any value the rule found in either
answer is blanked in the evidence too (evidence quotes a changed token without the name
that marked it: `Paris → sk-...`). The rule is by name pattern, so it may
redact more than credentials (`author: ...`, `max_tokens=...`): a little reading
comfort, never a leaked key.

Bounds: each side at most `MAX_SIDE_BYTES` of UTF-8 (cut at a character boundary and
marked), the evidence as the comparison bounds it (5 items of 120 characters); a whole
example encodes to at most `MAX_EXAMPLE_BYTES` (checked when encoding: a larger one is
cut further, never stored whole).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from proxy.comparison.answer import Answer
from proxy.telemetry.redaction import (
    REDACTED,
    credentials_in,
    is_sensitive_name,
    redact_json,
    redact_text,
)

MAX_SIDE_BYTES = 4096
MAX_EXAMPLE_BYTES = 12 * 1024
CUT_MARK = " …[cut]"
KEPT_LABELS = ("major", "minor")
VERSION = 1

# Evidence about a JSON path: `$.a.b: "x" → "y"` (or a tool's `name $.a: ...`).
_PATH_EVIDENCE = re.compile(r"^(?P<head>.*?\$[^\s:]*): (?P<change>.*)$", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][\w-]*")


@dataclass(frozen=True, slots=True)
class Side:
    """One answer as kept: rendered, redacted and bounded text, and its finish reason."""

    text: str
    finish: str | None = None
    cut: bool = False


@dataclass(frozen=True, slots=True)
class Example:
    route: str
    request_id: str
    at: float
    label: str
    reason: str
    score: float
    legacy: Side
    orchestrator: Side
    evidence: tuple[str, ...] = ()
    trace_id: str = ""
    models: tuple[str, ...] = field(default=())  # orchestrator models whose answer it was
    legacy_model: str | None = None

    def encode(self) -> bytes:
        """The stored form (JSON), at most `MAX_EXAMPLE_BYTES`: when escaping makes it
        larger, both sides are cut further (halved, and again) until it fits."""
        example = self
        for _ in range(6):
            data = orjson.dumps(example.as_dict())
            if len(data) <= MAX_EXAMPLE_BYTES:
                return data
            example = replace(example, legacy=_shrink(example.legacy),
                              orchestrator=_shrink(example.orchestrator),
                              evidence=example.evidence[:2], models=example.models[:4])
        return orjson.dumps(replace(example, legacy=Side("", cut=True),
                                    orchestrator=Side("", cut=True), evidence=()).as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {"v": VERSION, "route": self.route, "request_id": self.request_id,
                "at": self.at, "label": self.label, "reason": self.reason,
                "score": self.score, "evidence": list(self.evidence),
                "trace_id": self.trace_id, "models": list(self.models),
                "legacy_model": self.legacy_model,
                "legacy": _side_dict(self.legacy), "orchestrator": _side_dict(self.orchestrator)}


def _side_dict(side: Side) -> dict[str, Any]:
    return {"text": side.text, "finish": side.finish, "cut": side.cut}


def _shrink(side: Side) -> Side:
    text, cut = cut_utf8(side.text, len(side.text.encode("utf-8")) // 2)
    return Side(text, side.finish, side.cut or cut)


def decode(raw: bytes | str) -> Example | None:
    """An example from its stored form; None for anything unreadable (skipped, never
    an error: a report must not fail on one bad entry)."""
    try:
        data = orjson.loads(raw)
        return Example(
            route=str(data["route"]), request_id=str(data["request_id"]),
            at=float(data["at"]), label=str(data["label"]), reason=str(data["reason"]),
            score=float(data["score"]), legacy=_side(data["legacy"]),
            orchestrator=_side(data["orchestrator"]),
            evidence=tuple(str(item) for item in data.get("evidence") or ()),
            trace_id=str(data.get("trace_id") or ""),
            models=tuple(str(m) for m in data.get("models") or ()),
            legacy_model=data.get("legacy_model"))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _side(data: Mapping[str, Any]) -> Side:
    return Side(str(data["text"]), data.get("finish"), bool(data.get("cut")))


def build(*, route: str, request_id: str, at: float, label: str, reason: str, score: float,
          legacy: Answer, orchestrator: Answer, evidence: tuple[str, ...] = (),
          trace_id: str = "", models: tuple[str, ...] = (),
          legacy_model: str | None = None) -> Example:
    """An example of a compared pair, redacted and bounded (see the module docstring)."""
    return Example(route=route, request_id=request_id, at=at, label=label, reason=reason,
                   score=round(score, 6), legacy=side_of(legacy),
                   orchestrator=side_of(orchestrator),
                   evidence=shown_evidence(evidence, legacy, orchestrator),
                   trace_id=trace_id, models=models, legacy_model=legacy_model)


def shown_evidence(evidence: tuple[str, ...], legacy: Answer,
                   orchestrator: Answer) -> tuple[str, ...]:
    """Evidence as it may be shown (kept with a pair, or on a span with content capture):
    credentials redacted by the telemetry's rule, and the values that rule finds in
    either answer blanked wherever the evidence quotes them."""
    secrets = credentials(legacy) | credentials(orchestrator)
    return tuple(scrub(redact_evidence(item), secrets) for item in evidence)


MIN_SECRET = 4  # shorter "credentials" (`token: 5`) are not worth blanking everywhere


def credentials(answer: Answer) -> set[str]:
    """The values the redaction rule finds in an answer (text, JSON, tool arguments)."""
    found = credentials_in(answer.content_json) if answer.is_json else set()
    found |= credentials_in(answer.text)
    for call in answer.tool_calls:
        found |= credentials_in(call.parsed) if call.is_json else credentials_in(
            call.arguments)
    return {value for value in found if len(value) >= MIN_SECRET}


def scrub(item: str, secrets: set[str]) -> str:
    """An evidence item with every credential found in the answers replaced: evidence
    quotes a changed token without the name that marked it (`Paris → sk-...`)."""
    for secret in sorted(secrets, key=len, reverse=True):
        item = item.replace(secret, REDACTED)
        if item.endswith("…"):  # cut by the evidence bound: a secret's beginning
            for end in range(len(secret) - 1, MIN_SECRET - 1, -1):
                if item.endswith(secret[:end] + "…"):
                    item = item[:-end - 1] + REDACTED + "…"
                    break
    return item


def side_of(answer: Answer) -> Side:
    text, cut = cut_utf8(render(answer), MAX_SIDE_BYTES)
    return Side(text, answer.finish_reason, cut or answer.truncated)


def render(answer: Answer) -> str:
    """The answer as a person reads it, credentials redacted."""
    if answer.error is not None:
        return f"[error] {redact_text(answer.error)}"
    parts: list[str] = []
    if answer.is_json:
        parts.append(_json(redact_json(answer.content_json), indent=True))
    elif answer.text:
        parts.append(redact_text(answer.text))
    for call in answer.tool_calls:
        arguments = (_json(redact_json(call.parsed)) if call.is_json
                     else redact_text(call.arguments))
        parts.append(f"→ {call.name} {arguments}")
    if answer.embeddings:
        parts.append(f"[{len(answer.embeddings)} embedding vector(s)]")
    return "\n".join(parts)


def _json(value: Any, *, indent: bool = False) -> str:
    option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(value, option=option).decode()
    except TypeError:
        return redact_text(repr(value))


def redact_evidence(item: str) -> str:
    """An evidence item with credentials redacted: a change at a credential-like JSON
    path shows neither value; anything else goes through the text rule."""
    match = _PATH_EVIDENCE.match(item)
    if match is not None:
        names = _NAME.findall(match["head"].rsplit("$", 1)[1])
        if names and is_sensitive_name(names[-1]):
            return f"{match['head']}: {REDACTED} → {REDACTED}"
    return redact_text(item)


def cut_utf8(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to at most `limit` bytes of UTF-8 (mark included), and whether it was."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    keep = data[:max(0, limit - len(CUT_MARK.encode("utf-8")))]
    return keep.decode("utf-8", "ignore") + CUT_MARK, True
