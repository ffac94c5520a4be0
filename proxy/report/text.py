"""The report as text (for a terminal) and as JSON (for scripts and the ramp controller).

Layer: pure core. Percentages are of compared requests; "pts" are percentage points
(the excess is a difference of two rates). Latency delta is orchestrator minus legacy:
positive means the orchestrator was slower.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import orjson

from proxy.comparison.compare import LABELS, Label
from proxy.comparison.noise import Excess
from proxy.report.aggregate import Report, RouteSummary
from proxy.report.judgements import judge_lines


def render_json(report: Report) -> str:
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode()


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds}s"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} pts"


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0f} ms"


def excess_line(excess: Excess) -> str:
    if excess.value is None:
        return "n/a (no noise samples yet)" if excess.compared else "n/a"
    line = (f"{pts(excess.value)} [95% CI {pts(excess.low)} .. {pts(excess.high)}]")
    if not excess.enough:
        return line + "  (under 30 samples on a side: do not act on it)"
    return line + ("  above noise" if excess.significant else "  within noise")


def _labels(labels: Mapping[Label, int], total: int) -> str:
    parts = []
    for label in LABELS:
        count = labels.get(label, 0)
        parts.append(f"{label} {pct(count / total if total else None)} ({count})")
    return "   ".join(parts)


def _route(summary: RouteSummary) -> list[str]:
    s = summary
    lines = [f"== {s.route} ==",
             f"compared        {s.compared} requests"
             + (f" ({s.truncated} with an incomplete answer)" if s.truncated else ""),
             f"labels          {_labels(s.labels, s.compared)}",
             f"divergence      {pct(s.divergence_rate)} minor+major   noise floor "
             f"{pct(s.noise_floor)} ({s.noise_samples} legacy resamples)",
             f"  vs noise      {excess_line(s.excess)}",
             f"major           {pct(s.major_rate)}   noise {pct(s.noise_major_rate)}   "
             f"excess {excess_line(s.excess_major)}",
             f"orchestrator    {s.orchestrator_requests} requests   errors "
             f"{pct(s.error_rate)} ({s.orchestrator_errors})   low confidence "
             f"{s.orchestrator_low_confidence}",
             f"divert          {s.divert_requests} requests   fallbacks "
             f"{s.divert_fallbacks} ({pct(s.fallback_rate)})",
             f"latency delta   p50 {ms(s.latency_delta_p50_ms)}   p95 "
             f"{ms(s.latency_delta_p95_ms)}   (orchestrator - legacy, "
             f"{s.latency_samples} samples)"]
    if s.shadow_skipped:
        lines.append("shadows skipped " + "   ".join(
            f"{reason} {count}" for reason, count in s.shadow_skipped.items()))
    lines += _cost_lines(s)
    lines += judge_lines(s.judge)
    for model, counts in sorted(s.models.items()):
        total = counts.get("compared", 0)
        divergent = counts.get("minor", 0) + counts.get("major", 0)
        lines.append(f"model           {model}: {total} compared, "
                     f"{pct(divergent / total if total else None)} minor+major, "
                     f"{counts.get('major', 0)} major")
    if s.top:
        lines.append("most divergent  (request id, label, score, bucket)")
        lines += [f"                {t.request_id}  {t.label}  {t.score:.3f}  "
                  f"{when(t.bucket_start)}" for t in s.top[:10]]
    return lines


def _cost_lines(s: RouteSummary) -> list[str]:
    if not s.cost:
        return ["cost (USD)      no calls recorded"]
    lines = ["cost (USD)      role               total   per request     per day   "
             "calls  unpriced"]
    for role, cost in s.cost.items():
        per_request = "n/a" if cost.per_request is None else f"{cost.per_request:.6f}"
        per_day = "n/a" if cost.per_day is None else f"{cost.per_day:.4f}"
        lines.append(f"                {role:<13} {cost.usd:>10.4f}   {per_request:>11}"
                     f"   {per_day:>9}   {cost.calls:>5}  {cost.unpriced:>8}")
    return lines


def render_text(report: Report) -> str:
    span = duration(report.until - report.since)
    head = (f"llm-shadow report: {when(report.since)} .. {when(report.until)} ({span}), "
            f"{len(report.routes)} route{'s' if len(report.routes) != 1 else ''}")
    if not report.routes:
        return head + "\n\nNo comparisons recorded in this window.\n"
    blocks = ["\n".join(_route(r.summary)) for r in report.routes]
    return head + "\n\n" + "\n\n".join(blocks) + "\n"
