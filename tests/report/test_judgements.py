"""The judge in the report: its counters in a bucket, the agreement per route derived from
the rules-label-by-verdict table, the text section and the JSON fields; a route the
judge never looked at has none."""

from __future__ import annotations

import json

from proxy.comparison import Comparison
from proxy.report.aggregate import Bucket, Report, route_report, summarise
from proxy.report.entry import ReportEntry, RoleCost, increments
from proxy.report.judgements import JudgeTally, judge_lines, judge_summary
from proxy.report.text import render_json, render_text

DAY = 86_400.0


def fields_of(*entries: ReportEntry) -> dict[str, float]:
    total: dict[str, float] = {}
    for entry in entries:
        ints, floats = increments(entry)
        for name, value in {**ints, **floats}.items():
            total[name] = total.get(name, 0) + value
    return total


def judged(label: str, verdict: str | None = None, *, failure: str | None = None,
           skipped: str | None = None, usd: float | None = None) -> ReportEntry:
    costs = (RoleCost("judge", usd),) if usd is not None else ()
    return ReportEntry("/openai", "r1", costs=costs, judge=JudgeTally(
        label, verdict=verdict, failure=failure, skipped=skipped))  # type: ignore[arg-type]


def test_counters_of_a_verdict_a_failure_and_a_skip() -> None:
    assert increments(judged("minor", "subset", usd=0.001)) == (
        {"judge:verdicts": 1, "judge:minor:subset": 1, "cost:judge:calls": 1,
         "cost:judge:requests": 1}, {"cost:judge:usd": 0.001})
    assert increments(judged("equivalent", failure="timeout"))[0] == {
        "judge:failed": 1, "judge:failed:timeout": 1}
    assert increments(judged("equivalent", skipped="budget_spent"))[0] == {
        "judge:skipped:budget_spent": 1}


def test_agreement_comes_from_the_table() -> None:
    fields = fields_of(
        *[judged("equivalent", "same_facts")] * 5, judged("equivalent", "contradiction"),
        judged("minor", "subset"), judged("minor", "contradiction"),
        judged("major", "same_facts"), judged("major", "contradiction"),
        judged("minor", failure="invalid_verdict"), judged("minor", skipped="too_long"),
        judged("minor", skipped="too_long"))
    summary = judge_summary(fields)
    assert summary is not None
    assert summary.verdicts == 10
    assert (summary.agree, summary.rules_lenient, summary.rules_strict) == (7, 2, 1)
    assert summary.agreement_rate == 0.7
    assert summary.failed == 1 and summary.failures == {"invalid_verdict": 1}
    assert summary.skipped == {"too_long": 2}
    assert summary.table == {"equivalent": {"same_facts": 5, "contradiction": 1},
                             "minor": {"subset": 1, "contradiction": 1},
                             "major": {"same_facts": 1, "contradiction": 1}}


def test_a_route_the_judge_never_saw_has_no_judge_section() -> None:
    comparison = Comparison("minor", 0.3)
    fields = fields_of(ReportEntry("/openai", "r1", comparison=comparison))
    assert judge_summary(fields) is None
    assert judge_lines(None) == []
    summary = summarise("/openai", [Bucket("/openai", 0.0, fields)], since=0.0, until=DAY,
                        bucket_seconds=3600)
    assert summary.judge is None
    assert "judge" not in render_text(Report(DAY, 0.0, DAY, 3600, (
        route_report("/openai", [Bucket("/openai", 0.0, fields)], since=0.0, until=DAY,
                     bucket_seconds=3600),)))


def test_text_and_json_show_the_judge() -> None:
    fields = fields_of(ReportEntry("/openai", "r1", comparison=Comparison("minor", 0.3)),
                       judged("minor", "subset", usd=0.002),
                       judged("equivalent", "contradiction", usd=0.002),
                       judged("minor", failure="timeout"),
                       judged("minor", skipped="budget_spent"))
    route = route_report("/openai", [Bucket("/openai", 0.0, fields)], since=0.0, until=DAY,
                         bucket_seconds=3600)
    report = Report(DAY, 0.0, DAY, 3600, (route,))
    text = render_text(report)
    assert ("judge           2 verdicts, agreeing with the rules 50.0% (1)   rules too "
            "lenient 1   too strict 0") in text
    assert "                failed 1 (timeout 1)   skipped 1 (budget_spent 1)" in text
    assert "  rules \\ judge    same_facts    irrelevant        subset      superset " \
           "contradiction" in text
    assert "  equivalent                0             0             0             0" \
           "             1" in text
    assert "                judge             0.0040" in text  # its own cost role
    data = json.loads(render_json(report))["routes"][0]
    assert data["judge"]["verdicts"] == 2 and data["judge"]["rules_lenient"] == 1
    assert data["judge"]["table"] == {"minor": {"subset": 1},
                                      "equivalent": {"contradiction": 1}}
    assert data["cost"]["judge"]["calls"] == 2
