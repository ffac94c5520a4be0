"""`llm-shadow report` against a real redis-server: formats, output file, route filter,
Redis URL precedence, and a clear exit 1 when Redis is unreachable."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import pytest

from proxy.cli import report as report_command
from proxy.comparison import Comparison
from proxy.redisclient import redis_client
from proxy.report.aggregate_store import ReportStore
from proxy.report.entry import ReportEntry, RoleCost
from proxy.report.example import Example, Side
from tests.fakes.servers import RedisServer, free_port

pytestmark = pytest.mark.integration


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llm-shadow")
    commands = parser.add_subparsers(dest="command", required=True)
    report_command.register(commands)
    args = parser.parse_args(["report", *argv])
    code: int = args.func(args)
    return code


@pytest.fixture
def seeded(redis_server: RedisServer, tmp_path: Path) -> Path:
    """A config file whose Redis prefix holds two routes' worth of comparisons."""
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": f"redis://127.0.0.1:{free_port()}/0",
                                            "key_prefix": prefix}}))

    async def seed() -> None:
        client = redis_client(redis_server.url, connect_timeout=1, socket_timeout=2)
        store = ReportStore(client, prefix)
        for index in range(6):
            label = ("identical", "minor", "major")[index % 3]
            await store.record(ReportEntry(
                "/openai", f"oa-{index}", model="gpt-4o-mini",
                comparison=Comparison(label, index / 10),  # type: ignore[arg-type]
                latency_delta_s=0.1 * index, costs=(RoleCost("legacy", 0.001),)))
        await store.record_comparison("/anthropic", "an-1", Comparison("major", 0.8))
        await client.aclose()

    asyncio.run(seed())
    return config


def test_text_report(seeded: Path, redis_server: RedisServer,
                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--config", str(seeded), "--redis-url", redis_server.url) == 0
    out = capsys.readouterr().out
    assert "== /openai ==" in out and "== /anthropic ==" in out
    assert "compared        6 requests" in out
    assert "oa-5  major" in out


def test_json_report_with_route_filter(seeded: Path, redis_server: RedisServer,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--config", str(seeded), "--redis-url", redis_server.url, "--format", "json",
               "--route", "/openai", "--since", "1h30m") == 0
    data = json.loads(capsys.readouterr().out)
    assert [route["route"] for route in data["routes"]] == ["/openai"]
    assert data["until"] - data["since"] == pytest.approx(5400, abs=5)
    assert data["routes"][0]["labels"] == {"identical": 2, "equivalent": 0, "minor": 2,
                                           "major": 2}


def test_html_report_to_a_file(seeded: Path, redis_server: RedisServer, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "report.html"
    assert cli("--config", str(seeded), "--redis-url", redis_server.url, "--format", "html",
               "--output", str(output)) == 0
    page = output.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and "/anthropic" in page
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?https?:", page, re.IGNORECASE)
    assert f"wrote {output}" in capsys.readouterr().err


def test_environment_url_overrides_the_config(seeded: Path, redis_server: RedisServer,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LLM_SHADOW_REDIS_URL", redis_server.url)
    assert cli("--config", str(seeded)) == 0
    assert "== /openai ==" in capsys.readouterr().out


def test_flag_overrides_the_environment(seeded: Path, redis_server: RedisServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_SHADOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert cli("--config", str(seeded), "--redis-url", redis_server.url) == 0


def test_unreachable_redis_exits_1_without_leaking_the_url(
        seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://user:s3cret-sentinel@127.0.0.1:{free_port()}/0"
    assert cli("--config", str(seeded), "--redis-url", url) == 1
    err = capsys.readouterr().err
    assert "cannot reach Redis" in err
    assert "s3cret-sentinel" not in err


def test_bad_duration_is_a_usage_error(seeded: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli("--config", str(seeded), "--since", "yesterday")
    assert exc.value.code == 2


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800), ("1w", 604_800),
    ("1h30m", 5400), ("0.5h", 1800)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert report_command.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5", "-5m", "5x", "0m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        report_command.parse_duration(text)


def test_registered_in_the_main_command(seeded: Path, redis_server: RedisServer,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from proxy.cli.main import main

    assert main(["report", "--config", str(seeded), "--redis-url", redis_server.url,
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["routes"]


def test_a_one_minute_window_counts_one_minute_through_the_console_script(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """54 compared in the hour, 4 in the last minute: `--since 1m` says 4, and says
    which span it counted."""
    from tests.fakes.cli import llm_shadow

    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": redis_server.url, "key_prefix": prefix},
                                  "comparison": {"keep_examples": 3}}))

    async def seed() -> None:
        client = redis_client(redis_server.url, connect_timeout=1, socket_timeout=2)
        store = ReportStore(client, prefix, keep_examples=3)
        now = time.time()
        for index in range(50):
            await store.record(ReportEntry("/openai", f"early-{index}", at=now - 1200,
                                           comparison=Comparison("minor", 0.3)))
        for index in range(4):
            await store.record(ReportEntry(
                "/openai", f"late-{index}", at=now - 20,
                comparison=Comparison("major", 1.0, reason="fact_changed"),
                example=Example("/openai", f"late-{index}", now - 20, "major",
                                "fact_changed", 1.0, Side("It is Paris."), Side("It is Lyon."),
                                evidence=("Paris → Lyon",), trace_id="c" * 32)))
        await client.aclose()

    asyncio.run(seed())
    minute = llm_shadow("report", "--config", str(config), "--since", "1m", "--format",
                        "json", cwd=tmp_path)
    assert minute.returncode == 0, minute.stderr
    data = json.loads(minute.stdout)
    assert data["routes"][0]["compared"] == 4 and data["bucket_seconds"] == 10
    assert data["until"] - data["counted_since"] < 71
    text = llm_shadow("report", "--config", str(config), "--since", "1m", cwd=tmp_path)
    lines = text.stdout.splitlines()
    assert "(1m), 1 route" in lines[0]
    assert re.fullmatch(r"counted .* UTC: [67] buckets of 10s, each counted whole.*", lines[1])
    assert "compared        4 requests" in text.stdout
    assert "evidence      Paris → Lyon" in text.stdout
    hour = llm_shadow("report", "--config", str(config), "--since", "1h", "--format", "json",
                      cwd=tmp_path)
    assert json.loads(hour.stdout)["routes"][0]["compared"] == 54
    page = tmp_path / "report.html"
    html = llm_shadow("report", "--config", str(config), "--since", "5m", "--format", "html",
                      "--output", str(page), "--jaeger-url", "http://jaeger.example:16686",
                      cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    content = page.read_text()
    assert 'href="http://jaeger.example:16686/trace/' + "c" * 32 + '"' in content
    assert 'class="new">Lyon</mark>' in content
