"""The report as one self-contained HTML page: plotly charts with plotly.js inlined, so
the file opens with no network (a locked-down cluster, an air-gapped laptop).

Layer: pure core (plotly only builds the page; nothing is fetched or served). Per route:
divergence by label over time as stacked shares of compared requests, with the
divergence rate (minor + major) and the noise floor drawn over them; the latency-delta
distribution (orchestrator minus legacy, log-binned); and cost by role (per request and
in total). The text report sits under the charts for the exact numbers. The page is
about 5 MB, nearly all of it plotly.js.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from proxy.comparison.compare import Label
from proxy.report.aggregate import Report, RouteReport
from proxy.report.entry import bin_centre_ms
from proxy.report.text import render_text, when

COLOURS: dict[Label, str] = {"identical": "#2e7d32", "equivalent": "#9ccc65", "minor": "#ffb300",
           "major": "#e53935"}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def _time(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def divergence_figure(route: RouteReport) -> go.Figure:
    points = route.timeline
    x = [_time(p.start) for p in points]
    fig = go.Figure()
    for label, colour in COLOURS.items():
        shares = [100 * p.labels[label] / p.compared if p.compared else 0 for p in points]
        fig.add_trace(go.Bar(x=x, y=shares, name=label, marker_color=colour,
                             customdata=[p.labels[label] for p in points],
                             hovertemplate="%{y:.1f}% (%{customdata})"))
    fig.add_trace(go.Scatter(
        x=x, y=[_pct(p.divergence_rate) for p in points], name="divergence (minor+major)",
        mode="lines+markers", line={"color": "#212121", "width": 2}))
    fig.add_trace(go.Scatter(
        x=x, y=[_pct(p.noise_floor) for p in points], name="noise floor (legacy vs legacy)",
        mode="lines+markers", line={"color": "#1e88e5", "width": 2, "dash": "dash"}))
    fig.update_layout(barmode="stack", title="Divergence by label over time, against the "
                      "noise floor", yaxis_title="% of compared requests",
                      yaxis_range=[0, 100], legend_orientation="h", height=420)
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


def _route_section(route: RouteReport) -> str:
    name = html.escape(route.summary.route)
    parts = [f"<section><h2>{name}</h2>"]
    if route.timeline:
        parts.append(_figure_html(divergence_figure(route)))
    if route.latency_histogram:
        parts.append(_figure_html(latency_figure(route)))
    if route.summary.cost:
        parts.append(_figure_html(cost_figure(route)))
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    title = f"llm-shadow report {when(report.since)} .. {when(report.until)}"
    sections = "\n".join(_route_section(route) for route in report.routes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
pre{{background:#f5f5f5;padding:1em;overflow-x:auto}}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
{sections or "<p>No comparisons recorded in this window.</p>"}
<h2>Numbers</h2>
<pre>{html.escape(render_text(report))}</pre>
</body></html>
"""
