"""Text, JSON and HTML renderings of a report (pure: a report built from buckets)."""

from __future__ import annotations

import re

import orjson
import pytest

from proxy.report.aggregate import Bucket, Report, route_report
from proxy.report.entry import latency_bin
from proxy.report.html import render_html
from proxy.report.text import duration, excess_line, render_json, render_text

HOUR = 3600.0
NOW = 1_800_000_000.0


def sample_report() -> Report:
    fields = {"compared": 120, "label:identical": 50, "label:equivalent": 30,
              "label:minor": 25, "label:major": 15, "score_sum": 30.0, "noise": 40,
              "noise:identical": 34, "noise:minor": 6, f"lat:{latency_bin(150)}": 70,
              f"lat:{latency_bin(-40)}": 30, f"lat:{latency_bin(900)}": 20,
              "cost:legacy:usd": 0.24, "cost:legacy:calls": 120, "cost:legacy:requests": 120,
              "cost:orchestrator:usd": 0.05, "cost:orchestrator:calls": 200,
              "cost:orchestrator:requests": 120, "cost:orchestrator:unpriced": 3,
              "orch:requests": 120, "orch:failed": 2, "divert:requests": 12,
              "divert:fallbacks": 1, "m|gpt-4o-mini|compared": 120, "m|gpt-4o-mini|major": 15}
    buckets = [Bucket("/openai", NOW - 2 * HOUR, fields, (("major|req-<b>", 0.93),)),
               Bucket("/openai", NOW - HOUR, {**fields, "compared": 10, "label:identical": 10,
                                              "label:equivalent": 0, "label:minor": 0,
                                              "label:major": 0})]
    routes = (route_report("/openai", buckets, since=NOW - 24 * HOUR, until=NOW,
                           bucket_seconds=3600),)
    return Report(NOW, NOW - 24 * HOUR, NOW, 3600, routes)


def test_text_report_shows_every_number() -> None:
    text = render_text(sample_report())
    for expected in ("llm-shadow report:", "(1d), 1 route", "== /openai ==",
                     "compared        130 requests", "identical", "noise floor 15.0%",
                     "vs noise", "orchestrator    240 requests", "fallbacks 2",
                     "latency delta   p50", "legacy", "orchestrator", "gpt-4o-mini",
                     "req-<b>  major  0.930"):
        assert expected in text, expected


def test_empty_report() -> None:
    text = render_text(Report(NOW, NOW - HOUR, NOW, 3600, ()))
    assert "No comparisons recorded" in text


def test_json_report_round_trips() -> None:
    data = orjson.loads(render_json(sample_report()))
    [route] = data["routes"]
    assert route["route"] == "/openai" and route["compared"] == 130
    assert route["excess"]["noise_samples"] == 80
    assert route["cost"]["legacy"]["per_request"] == pytest.approx(0.002)
    assert len(route["timeline"]) == 2
    assert route["top"][0]["request_id"] == "req-<b>"


def test_html_is_self_contained() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", page, re.IGNORECASE)
    assert "Plotly.newPlot" in page
    assert "Divergence by label over time" in page
    assert "noise floor" in page and "Latency delta" in page and "Cost by role" in page
    assert "req-&lt;b&gt;" in page and "req-<b>" not in page.split("</script>")[-1]


@pytest.mark.parametrize(("seconds", "text"), [
    (86_400, "1d"), (3600, "1h"), (5400, "90m"), (45, "45s"), (3601, "1.0h")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_excess_line_warns_on_small_samples() -> None:
    summary = sample_report().routes[0].summary
    assert "above noise" in excess_line(summary.excess_major) or "within noise" in excess_line(
        summary.excess_major)
    from proxy.comparison import Proportion, excess_divergence

    assert "do not act" in excess_line(excess_divergence(Proportion(3, 5), Proportion(0, 5)))
    assert "no noise samples" in excess_line(excess_divergence(Proportion(3, 5),
                                                               Proportion(0, 0)))


def test_the_text_report_shows_shadows_skipped_for_load() -> None:
    fields = {"compared": 3, "label:identical": 3, "skip:overload": 12}
    report = Report(NOW, NOW - HOUR, NOW, 3600, (route_report(
        "/openai", [Bucket("/openai", NOW - HOUR, fields)], since=NOW - HOUR, until=NOW,
        bucket_seconds=3600),))
    assert "shadows skipped overload 12" in render_text(report)
    assert "shadows skipped" not in render_text(sample_report())
