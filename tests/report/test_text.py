"""Text, JSON and HTML renderings of a report (pure: a report built from buckets)."""

from __future__ import annotations

import re

import orjson
import pytest

from proxy.report.aggregate import Bucket, Report, route_report
from proxy.report.entry import latency_bin
from proxy.report.example import Example, Side
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


MINUTE = 60.0
PAIR = Example("/openai", "req-7", NOW - 20, "major", "fact_changed", 1.0,
               Side("The capital of France is Paris.", "stop"),
               Side("The capital of France is Lyon.", "stop"),
               evidence=("Paris → Lyon",), trace_id="0af7651916cd43dd8448eb211c80319c",
               models=("qwen-max",))


def short_report(**options: object) -> Report:
    """A one-minute window read from 10 s buckets, with reasons, models and a pair."""
    fields = {"compared": 4, "label:identical": 2, "label:major": 2,
              "reason:major:fact_changed": 2, "reason:identical:identical": 2,
              "cost:legacy:usd": 0.004, "cost:legacy:calls": 4, "cost:legacy:requests": 4,
              "orch:requests": 4, "om|qwen-max|calls": 4, "om|qwen-max|valid": 4,
              "om|qwen-max|used": 4, f"om|qwen-max|lat:{latency_bin(180)}": 4,
              "om|qwen-max|usd": 0.002, "om|qwen-max|compared": 4,
              "om|qwen-max|label:major": 2}
    since = NOW - MINUTE + 5  # not on a bucket boundary
    buckets = [Bucket("/openai", NOW - 30, fields)]
    route = route_report("/openai", buckets, since=since, until=NOW, bucket_seconds=10,
                         examples=options.pop("examples", (PAIR,)))  # type: ignore[arg-type]
    return Report(NOW, since, NOW, 10, (route,), counted_since=NOW - MINUTE,
                  **options)  # type: ignore[arg-type]


def test_the_header_says_which_window_was_counted() -> None:
    text = render_text(short_report())
    head = text.splitlines()[:2]
    assert head[0] == ("llm-shadow report: 2027-01-15 07:59:05 UTC .. 2027-01-15 08:00:00 UTC "
                       "(55s), 1 route")
    assert head[1] == ("counted 2027-01-15 07:59:00 UTC .. 2027-01-15 08:00:00 UTC: 6 buckets "
                       "of 10s, each counted whole (from 5s before the window)")


def test_per_day_cost_is_labelled_a_projection_with_its_window() -> None:
    text = render_text(short_report())
    assert "per day *" in text
    assert "* projected: this window's cost scaled to a day, from 30s of data" in text


def test_reasons_models_and_kept_pairs_are_listed() -> None:
    text = render_text(short_report())
    assert re.search(r"by reason\s+major\s+fact_changed 2", text)
    assert "identical   identical" not in text
    row = next(line for line in text.splitlines() if "qwen-max" in line and "(100%)" in line)
    assert row.split()[:5] == ["qwen-max", "4", "(100%)", "4", "4"]
    assert "50.0% of 4" in row
    for expected in ("examples        divergent pairs kept", "major  fact_changed",
                     "request req-7", "trace 0af7651916cd43dd8448eb211c80319c",
                     "evidence      Paris → Lyon", "legacy        The capital of France is Paris.",
                     "orchestrator  The capital of France is Lyon.  [finish: stop]"):
        assert expected in text, expected


def test_without_kept_pairs_the_report_says_how_to_keep_them() -> None:
    text = render_text(short_report(examples=()))
    assert "set comparison.keep_examples and opt in to content capture" in text
    kept = render_text(short_report(examples=(), examples_kept=5))
    assert "pairs are kept only while content capture is on" in kept


def test_json_has_the_counted_window_reasons_models_and_pairs() -> None:
    data = orjson.loads(render_json(short_report()))
    assert data["counted_since"] == NOW - MINUTE and data["bucket_seconds"] == 10
    [route] = data["routes"]
    assert route["reasons"]["major"] == {"fact_changed": 2}
    assert route["orchestrator_models"]["qwen-max"]["selected"] == 4
    assert route["projection_seconds"] == 30
    assert route["timeline_seconds"] == 10
    [pair] = route["examples"]
    assert pair["evidence"] == ["Paris → Lyon"] and pair["legacy"]["finish"] == "stop"


def test_html_shows_pairs_reasons_and_models() -> None:
    page = render_html(short_report(), jaeger_url="http://jaeger:16686")
    for expected in ("Divergent pairs kept (1", 'class="new">Lyon</mark>', "Labels by reason",
                     "Orchestrator models", "qwen-max", "(10s steps)",
                     f'href="http://jaeger:16686/trace/{PAIR.trace_id}"'):
        assert expected in page, expected
    numbers = page.split("<h2>Numbers</h2>")[1]
    assert "Lyon" not in numbers  # the text copy leaves the pairs out
