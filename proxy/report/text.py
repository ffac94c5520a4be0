"""The report as text (for a terminal) and as JSON (for scripts and the ramp controller).

Layer: pure core. Percentages are of compared requests; "pts" are percentage points
(the excess is a difference of two rates). Latency delta is orchestrator minus legacy:
positive means the orchestrator was slower. The header says which window was counted
(whole buckets: it may start a little before the window asked for); "per day" costs
are projections and say from how long a window. One function per part of a route
(`_route` lists them in order): a new part is one more function there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import orjson

from proxy.comparison.comparator import LABELS, Label
from proxy.comparison.noise import Excess
from proxy.report.aggregate import OrchestratorModel, Report, RouteReport, RouteSummary
from proxy.report.example import Example, Side
from proxy.report.judgements import judge_lines


def render_json(report: Report) -> str:
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode()


def when(ts: float, *, seconds: bool = False) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds > 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} pts"


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0f} ms"


def plain_ms(value: float | None) -> str:
    """Milliseconds, whole, with thousands separators (a latency column)."""
    return "n/a" if value is None else f"{value:,.0f}"


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


def _route(route: RouteReport, *, examples: bool = True, bucket_seconds: int = 3600,
           ) -> list[str]:
    s = route.summary
    lines = [f"== {s.route} ==",
             f"compared        {s.compared} requests"
             + (f" ({s.truncated} with an incomplete answer)" if s.truncated else ""),
             f"labels          {_labels(s.labels, s.compared)}"]
    lines += _reason_lines("by reason", s.reasons, skip=("identical",))
    lines += [f"divergence      {pct(s.divergence_rate)} minor+major   noise floor "
              f"{pct(s.noise_floor)} ({s.noise_samples} legacy resamples)",
              f"  vs noise      {excess_line(s.excess)}",
              f"major           {pct(s.major_rate)}   noise {pct(s.noise_major_rate)}   "
              f"excess {excess_line(s.excess_major)}"]
    lines += _reason_lines("noise reasons", s.noise_reasons, skip=("identical",))
    lines += [f"orchestrator    {s.orchestrator_requests} requests   errors "
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
        lines.append(f"legacy model    {model}: {total} compared, "
                     f"{pct(divergent / total if total else None)} minor+major, "
                     f"{counts.get('major', 0)} major")
    lines += _model_lines(s.orchestrator_models)
    if s.top:
        lines.append("most divergent  (request id, label, score, bucket)")
        lines += [f"                {t.request_id}  {t.label}  {t.score:.3f}  "
                  f"{when(t.bucket_start, seconds=bucket_seconds < 60)}" for t in s.top[:10]]
    if examples:
        lines += _example_lines(route.examples)
    return lines


def _reason_lines(title: str, reasons: Mapping[str, Mapping[str, int]],
                  skip: tuple[str, ...] = ()) -> list[str]:
    lines: list[str] = []
    for label in reversed(LABELS):
        counts = reasons.get(label)
        if not counts or label in skip:
            continue
        parts = ", ".join(f"{reason} {count}" for reason, count in counts.items())
        lines.append(f"{title if not lines else '':<16}{label:<11} {parts}")
    return lines


def _model_lines(models: Mapping[str, OrchestratorModel]) -> list[str]:
    if not models:
        return []
    lines = ["orchestrator models (selected: picked by the pipeline, and the share of "
             "orchestrated requests; used: its answer in the merged answer)",
             "                model                 selected    used  answers  errors   "
             "p50 ms   p95 ms   USD/call    major"]
    for m in models.values():
        share = f"({m.selected_share * 100:.0f}%)" if m.selected_share is not None else ""
        per_call = "n/a" if m.cost_per_call is None else f"{m.cost_per_call:.6f}"
        major = f"{pct(m.major_rate)} of {m.compared}"
        lines.append(f"                {m.model[:20]:<20} {m.selected:>5} {share:<6} "
                     f"{m.used:>5} {m.answers:>8} {m.errors + m.timeouts:>7} "
                     f"{plain_ms(m.latency_p50_ms):>8} {plain_ms(m.latency_p95_ms):>8} "
                     f"{per_call:>10}   {major}")
    return lines


EXAMPLE_LINES = 8


def _example_lines(examples: tuple[Example, ...]) -> list[str]:
    if not examples:
        return []
    lines = ["examples        divergent pairs kept (major first, newest first; content "
             "capture is on)"]
    for example in examples:
        models = f"  models {', '.join(example.models)}" if example.models else ""
        lines.append(f"  {example.label:<6} {example.reason:<20} score {example.score:.3f}  "
                     f"{when(example.at, seconds=True)}  request {example.request_id}"
                     + (f"  trace {example.trace_id}" if example.trace_id else "") + models)
        if example.evidence:
            lines.append(f"    evidence      {'; '.join(example.evidence)}")
        lines += _side_lines("legacy", example.legacy)
        lines += _side_lines("orchestrator", example.orchestrator)
    return lines


def _side_lines(name: str, side: Side) -> list[str]:
    text = side.text.splitlines() or [""]
    shown = text[:EXAMPLE_LINES]
    finish = f"  [finish: {side.finish}]" if side.finish else ""
    more = len(text) - len(shown)
    out = [f"    {name if i == 0 else '':<13} {line}" for i, line in enumerate(shown)]
    out[-1] += finish
    if more or side.cut:
        out.append(f"    {'':<13} … ({more} more lines in --format json)" if more
                   else f"    {'':<13} … (cut when kept)")
    return out


def _cost_lines(s: RouteSummary) -> list[str]:
    if not s.cost:
        return ["cost (USD)      no calls recorded"]
    lines = ["cost (USD)      role               total   per request   per day *   "
             "calls  unpriced"]
    for role, cost in s.cost.items():
        per_request = "n/a" if cost.per_request is None else f"{cost.per_request:.6f}"
        per_day = "n/a" if cost.per_day is None else f"{cost.per_day:.4f}"
        lines.append(f"                {role:<13} {cost.usd:>10.4f}   {per_request:>11}"
                     f"   {per_day:>9}   {cost.calls:>5}  {cost.unpriced:>8}")
    lines.append(f"                * projected: this window's cost scaled to a day, from "
                 f"{duration(s.projection_seconds)} of data")
    return lines


def _header(report: Report) -> list[str]:
    short = report.until - report.since < 86_400
    span = duration(report.until - report.since)
    head = (f"llm-shadow report: {when(report.since, seconds=short)} .. "
            f"{when(report.until, seconds=short)} ({span}), {len(report.routes)} "
            f"route{'s' if len(report.routes) != 1 else ''}")
    return [head, counted_line(report)]


def counted_line(report: Report) -> str:
    """What was counted: whole buckets, so it may start before the window asked for."""
    counted = report.counted_from
    size = duration(report.bucket_seconds)
    buckets = max(1, -(-int(report.until - counted) // report.bucket_seconds))
    line = (f"counted {when(counted, seconds=True)} .. {when(report.until, seconds=True)}: "
            f"{buckets} bucket{'s' if buckets != 1 else ''} of {size}, each counted whole")
    if counted < report.since - 0.5:
        line += f" (from {duration(report.since - counted)} before the window)"
    return line


def render_text(report: Report, *, examples: bool = True) -> str:
    """The report; `examples=False` leaves the kept pairs out (the HTML page shows them
    side by side above its copy of the text)."""
    head = "\n".join(_header(report))
    if not report.routes:
        return head + "\n\nNo comparisons recorded in this window.\n"
    blocks = ["\n".join(_route(r, examples=examples, bucket_seconds=report.bucket_seconds))
              for r in report.routes]
    hint = _examples_hint(report) if examples else ""
    return head + "\n\n" + "\n\n".join(blocks) + "\n" + (f"\n{hint}\n" if hint else "")


def _examples_hint(report: Report) -> str:
    divergent = any(r.summary.labels["major"] + r.summary.labels["minor"]
                    for r in report.routes)
    if not divergent or any(r.examples for r in report.routes):
        return ""
    if report.examples_kept:
        return ("No divergent pair kept in this window: pairs are kept only while content "
                "capture is on (telemetry.capture_message_content).")
    return ("To see divergent pairs side by side, set comparison.keep_examples and opt in "
            "to content capture (telemetry.capture_message_content).")
