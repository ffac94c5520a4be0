"""The report as one self-contained HTML page: plotly charts with plotly.js inlined, so
the file opens with no network (a locked-down cluster, an air-gapped laptop).

Layer: pure core (plotly only builds the page; nothing is fetched or served). Per route,
in order (`_route_section`, one function per part: a new part is one more line there):
the headline numbers; divergence by label over time as stacked shares of compared
requests, in steps that fit the window (`RouteReport.timeline_seconds`), with the
divergence rate (minor + major) and the noise floor drawn over them; labels by reason;
the kept divergent pairs side by side (`proxy.report.sidebyside`), what an operator
reads first after the numbers; the orchestrator's models; the latency-delta
distribution (orchestrator minus legacy, log-binned); cost by role (per request and in
total); the most divergent requests. The text report sits at
the end for the exact numbers. The page is about 5 MB, nearly all of it plotly.js.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from proxy.comparison.comparator import LABELS, Label
from proxy.report.aggregate import Report, RouteReport
from proxy.report.entry import bin_centre_ms
from proxy.report.sidebyside import STYLE as PAIR_STYLE
from proxy.report.sidebyside import render_examples, trace_link
from proxy.report.text import counted_line, duration, pct, plain_ms, render_text, when

COLOURS: dict[Label, str] = {"identical": "#2e7d32", "equivalent": "#9ccc65", "minor": "#ffb300",
           "major": "#e53935"}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222}
pre{background:#f5f5f5;padding:1em;overflow-x:auto}
section{margin-bottom:3em}
.window{color:#555;margin-top:-.6em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border-bottom:1px solid #e0e0e0;padding:.25em .7em;text-align:right}
th{background:#f5f5f5}th.text,td.text{text-align:left}
.numbers{display:flex;flex-wrap:wrap;gap:.6em 2em;margin:.6em 0 1em}
.numbers div{min-width:10em}.numbers b{display:block;font-size:1.3em}
.hint{color:#666;font-size:.9em}
"""


def _time(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def divergence_figure(route: RouteReport, since: float | None = None,
                      until: float | None = None) -> go.Figure:
    points = route.timeline
    step = route.timeline_seconds or 0
    # Bars are centred on their step and as wide as it, so one bar per step reads right
    # whatever the window (a date axis would otherwise guess the width).
    x = [_time(p.start + step / 2) for p in points]
    width = [step * 1000 * 0.9] * len(points) if step else None
    fig = go.Figure()
    for label, colour in COLOURS.items():
        shares = [100 * p.labels[label] / p.compared if p.compared else 0 for p in points]
        fig.add_trace(go.Bar(x=x, y=shares, width=width, name=label, marker_color=colour,
                             customdata=[p.labels[label] for p in points],
                             hovertemplate="%{y:.1f}% (%{customdata})"))
    fig.add_trace(go.Scatter(
        x=x, y=[_pct(p.divergence_rate) for p in points], name="divergence (minor+major)",
        mode="lines+markers", line={"color": "#212121", "width": 2}))
    fig.add_trace(go.Scatter(
        x=x, y=[_pct(p.noise_floor) for p in points], name="noise floor (legacy vs legacy)",
        mode="lines+markers", line={"color": "#1e88e5", "width": 2, "dash": "dash"}))
    title = "Divergence by label over time, against the noise floor"
    if step:
        title += f" ({duration(step)} steps)"
    fig.update_layout(barmode="stack", title=title, yaxis_title="% of compared requests",
                      yaxis_range=[0, 100], legend_orientation="h", height=420)
    if since is not None and until is not None:
        fig.update_xaxes(range=[_time(since), _time(until)])
    return fig


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 2)


def latency_figure(route: RouteReport) -> go.Figure:
    bins = sorted(route.latency_histogram.items(), key=lambda item: bin_centre_ms(item[0]))
    labels = [f"{bin_centre_ms(index):+,.0f} ms" for index, _ in bins]
    fig = go.Figure(go.Bar(x=labels, y=[count for _, count in bins],
                           marker_color=["#e53935" if index > 0 else "#43a047"
                                         for index, _ in bins],
                           hovertemplate="%{x}: %{y} requests"))
    summary = route.summary
    fig.update_layout(
        title=(f"Latency delta, orchestrator - legacy (p50 "
               f"{_num(summary.latency_delta_p50_ms)} ms, p95 "
               f"{_num(summary.latency_delta_p95_ms)} ms)"),
        xaxis_title="delta (log bins; positive = orchestrator slower)",
        yaxis_title="requests", height=380)
    return fig


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+,.0f}"


def cost_figure(route: RouteReport) -> go.Figure:
    cost = route.summary.cost
    roles = list(cost)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("USD per request", "USD in total"))
    fig.add_trace(go.Bar(x=roles, y=[cost[r].per_request or 0 for r in roles],
                         marker_color="#5e35b1", name="per request"), row=1, col=1)
    fig.add_trace(go.Bar(x=roles, y=[cost[r].usd for r in roles], marker_color="#8e24aa",
                         name="total"), row=1, col=2)
    fig.update_layout(title="Cost by role", showlegend=False, height=360)
    return fig


def _figure_html(fig: go.Figure) -> str:
    out: Any = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)
    return str(out)


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], *, text: int = 1) -> str:
    """A table whose first `text` columns are words (left-aligned), the rest numbers."""
    def cell(tag: str, index: int, value: object) -> str:
        left = ' class="text"' if index < text else ""
        return f"<{tag}{left}>{html.escape(str(value))}</{tag}>"

    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _numbers(route: RouteReport) -> str:
    s = route.summary
    items = (("compared", str(s.compared)), ("divergence (minor+major)",
                                              pct(s.divergence_rate)),
             ("noise floor", pct(s.noise_floor)), ("major", pct(s.major_rate)),
             ("orchestrator errors", pct(s.error_rate)),
             ("divert fallbacks", pct(s.fallback_rate)))
    cells = "".join(f"<div>{html.escape(name)}<b>{html.escape(value)}</b></div>"
                    for name, value in items)
    return f'<div class="numbers">{cells}</div>'


def _reasons(route: RouteReport) -> str:
    s = route.summary
    rows = [(label, reason, count, pct(count / s.compared if s.compared else None))
            for label in reversed(LABELS) if label != "identical"
            for reason, count in s.reasons.get(label, {}).items()]
    if not rows:
        return ""
    return ("<h3>Labels by reason</h3>"
            + _table(("label", "reason", "requests", "of compared"), rows, text=2))


def _models(route: RouteReport) -> str:
    models = route.summary.orchestrator_models
    if not models:
        return ""
    rows = [(m.model, m.selected,
             pct(m.selected_share), m.used, m.answers, m.invalid, m.errors, m.timeouts,
             plain_ms(m.latency_p50_ms), plain_ms(m.latency_p95_ms), f"{m.usd:.6f}",
             "n/a" if m.cost_per_call is None else f"{m.cost_per_call:.6f}", m.compared,
             pct(m.major_rate)) for m in models.values()]
    return ("<h3>Orchestrator models</h3>"
            + _table(("model", "selected", "of requests", "used", "answers", "invalid",
                      "errors", "timeouts", "p50 ms", "p95 ms", "USD", "USD/call",
                      "compared", "major"), rows)
            + '<p class="hint">selected: picked by the pipeline for a request; used: its '
              "answer was in the merged answer; compared / major: the compared answers it "
              "contributed to.</p>")


def _top(route: RouteReport, report: Report, jaeger_url: str | None) -> str:
    top = route.summary.top[:10]
    if not top:
        return ""

    def bucket(start: float) -> str:
        return when(start, seconds=report.bucket_seconds < 60)

    rows = []
    for t in top:
        link = trace_link(t.request_id, "", jaeger_url)
        rid = html.escape(t.request_id)
        cell = f'<a href="{html.escape(link)}">{rid}</a>' if link else rid
        rows.append(f'<tr><td class="text"><code>{cell}</code></td>'
                    f"<td>{html.escape(t.label)}</td><td>{t.score:.3f}</td>"
                    f"<td>{html.escape(bucket(t.bucket_start))}</td></tr>")
    return ('<h3>Most divergent requests</h3><table><tr><th class="text">request id (Jaeger '
            "tag llm_shadow.request.id)</th><th>label</th><th>score</th><th>bucket</th></tr>"
            + "".join(rows) + "</table>")


def _route_section(route: RouteReport, report: Report, jaeger_url: str | None) -> str:
    name = html.escape(route.summary.route)
    parts = [f"<section><h2>{name}</h2>", _numbers(route)]
    if route.timeline:
        parts.append(_figure_html(divergence_figure(route, report.counted_from,
                                                    report.until)))
    parts += [_reasons(route), render_examples(route.examples, jaeger_url), _models(route)]
    if route.latency_histogram:
        parts.append(_figure_html(latency_figure(route)))
    if route.summary.cost:
        parts.append(_figure_html(cost_figure(route)))
    parts += [_top(route, report, jaeger_url), "</section>"]
    return "\n".join(part for part in parts if part)


def _window(report: Report) -> str:
    text = counted_line(report)
    return f'<p class="window">{html.escape(text[:1].upper() + text[1:])}.</p>'


def render_html(report: Report, jaeger_url: str | None = None) -> str:
    short = report.until - report.since < 86_400
    title = (f"llm-shadow report {when(report.since, seconds=short)} .. "
             f"{when(report.until, seconds=short)}")
    sections = "\n".join(_route_section(route, report, jaeger_url) for route in report.routes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{STYLE}{PAIR_STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
{_window(report)}
{sections or "<p>No comparisons recorded in this window.</p>"}
<h2>Numbers</h2>
<pre>{html.escape(render_text(report, examples=False))}</pre>
</body></html>
"""
