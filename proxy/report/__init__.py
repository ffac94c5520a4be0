"""The comparison report: aggregates every replica writes to Redis after each compared
request, read back as numbers (for the ramp controller) or as a text, JSON or HTML
report (`llm-shadow report`).

Layer: `entry`, `aggregate`, `render` and `html` are pure core; `store` is the Redis
adapter. Import the HTML renderer from `proxy.report.html` only when it is needed:
plotly is a heavy import.
"""

from __future__ import annotations

from proxy.report.aggregate import Report, RoleCostSummary, RouteReport, RouteSummary
from proxy.report.entry import ROLES, ReportEntry, Role, RoleCost
from proxy.report.render import render_json, render_text
from proxy.report.store import ReportStore, ReportStoreError

__all__ = [
    "ROLES",
    "Report",
    "ReportEntry",
    "ReportStore",
    "ReportStoreError",
    "Role",
    "RoleCost",
    "RoleCostSummary",
    "RouteReport",
    "RouteSummary",
    "render_json",
    "render_text",
]
