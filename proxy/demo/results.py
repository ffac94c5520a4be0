"""The end of the demo: what happened in a few lines, the comparison report (text, and an
HTML file), and where the traces went.

Layer: composition. The report is read back from the report store after the runtime
closed (closing flushes the last aggregates), exactly as `llm-shadow report` reads it,
so what is printed is what an operator would see.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from proxy.config import Settings
from proxy.demo.story import Story
from proxy.demo.traces import Destination, SpanCounter, jaeger_hint
from proxy.demo.watch import paragraph
from proxy.demo.world import World
from proxy.report.aggregate import Report
from proxy.report.aggregate_store import ReportStore
from proxy.report.text import render_text

Say = Callable[[str], None]


async def read_report(settings: Settings, since: float) -> Report:
    config = settings.config
    store = ReportStore.from_config(config.redis, config.comparison, budget=2.0)
    try:
        return await store.report(since)
    finally:
        await store.aclose()


def what_happened(story: Story, world: World, say: Say) -> None:
    stats = story.stats
    labels = [e.label for e in story.events if e.event in ("start", "promote")]
    rollback = story.rollback
    wrong_before = stats.count(right=False, ok=True, until=story.injected_at)
    wrong_during = stats.count(right=False, ok=True, since=story.injected_at,
                               until=story.kill_at)
    wrong_after = stats.count(right=False, ok=True, since=story.kill_at)
    calls = ", ".join(f"{name} {model.calls}" for name, model in world.models.items())
    item = paragraph(say, indent=13)
    say("What happened")
    item(f"  ramp       started at {labels[0] if labels else '?'} and promoted "
         f"{len(labels) - 1} times while the guardrails held ({' -> '.join(labels)}); "
         f"rolled back on its own {rollback.at - story.injected_wall:.1f}s after the "
         f"regression, at step {rollback.step + 1} \"{rollback.label}\"")
    under_way = stats.count(until=story.kill_at, finished_after=story.kill_at,
                            by_orchestrator=True)
    item(f"  flags      kill switch on for /openai, applied here "
         f"{max(0.0, story.kill.at - rollback.at) * 1000:.0f} ms after the decision "
         f"(audit: {story.audit.split(',')[0]}); {story.kill.shadows_cancelled} shadows in "
         f"flight cancelled" + (f"; {_count(under_way, 'diverted answer')} already under way "
                                f"finished normally (a rollback stops new requests going to "
                                f"the orchestrator, never an answer midway)"
                                if under_way else ""))
    item(f"  client     {len(stats.outcomes)} requests through the openai SDK, "
         f"{stats.count(ok=False)} failed{_errors(story)}, "
         f"{stats.count(by_orchestrator=True)} answered by the orchestrator (diverted); "
         f"wrong answers: {wrong_before} before the regression, {wrong_during} between it "
         f"and the rollback, {wrong_after} after it")
    item(f"  upstreams  legacy {world.legacy.calls} calls (the client's requests, noise "
         f"samples, shadows of diverts); models: {calls}")
    if stats.skipped:
        item(f"  note       {stats.skipped} requests were not sent because too many were "
             f"already waiting: this machine is slower than the demo's rate (try --rate)")


def show_report(report: Report, html_path: Path, say: Say) -> None:
    say("")
    say("Comparison report (from the report store, as `llm-shadow report` prints it)")
    say("-" * 80)
    for line in render_text(report).rstrip("\n").splitlines():
        say(line)
    say("-" * 80)
    from proxy.report.html import render_html  # plotly is a heavy import

    html_path.write_text(render_html(report), encoding="utf-8")
    say(f"HTML report (charts, opens with no network): {html_path}")


def show_traces(destination: Destination, spans: SpanCounter | None,
                drops: list[tuple[str, int]], report: Report, say: Say) -> None:
    count = spans.count if spans is not None else 0
    lost = sum(n for _, n in drops)
    dropped = f" ({lost} dropped: {', '.join(f'{r} {n}' for r, n in drops if n)})" \
        if lost else ""
    if destination.kind == "disabled":
        say(f"Traces: {destination.describe}")
        return
    say(f"Traces: {count} spans{dropped} -> {destination.describe}")
    top = next((r.summary.top[0].request_id for r in report.routes if r.summary.top), None)
    if top is not None:
        say("  One trace per request; find one the report lists by its request id:")
        if destination.path is not None:
            say(f"    grep -n {top} {destination.path}")
        say(f"    in Jaeger: tag llm_shadow.request.id={top}")
    if destination.kind == "file":
        say("  To see them in Jaeger instead, run the demo with an OTLP endpoint:")
        for line in jaeger_hint():
            say(f"    {line}")


def _errors(story: Story) -> str:
    errors = story.stats.errors()
    if not errors:
        return ""
    return " (" + ", ".join(f"{n} {kind}" for kind, n in errors.most_common(3)) + ")"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
