"""A sidecar with no collector configured stays quiet: nothing is exported, spans can go
to a file instead (`telemetry.traces_file`, JSON Lines), and an exporter whose collector
is down logs its failure once a minute, not on every attempt."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from proxy.config.load import ConfigError
from proxy.config.telemetry import TelemetrySection, read_otel_environment
from proxy.telemetry.exporters import RepeatFilter
from proxy.telemetry.setup import build_telemetry, describe
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import wait_for
from tests.telemetry.test_setup import request


def test_with_no_variable_nothing_is_exported_and_the_log_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llm_shadow.telemetry"):
        telemetry = build_telemetry(TelemetrySection(), read_otel_environment({}))
    assert telemetry.providers.processors == ()
    assert "spans not exported (set OTEL_EXPORTER_OTLP_ENDPOINT or telemetry.traces_file)" \
        in caplog.text
    assert telemetry.close(timeout=1) is True


def test_traces_file_gets_one_json_object_per_span(tmp_path: Path) -> None:
    section = TelemetrySection(traces_file="spans/traces.jsonl")
    telemetry = build_telemetry(section, read_otel_environment({}), base_dir=tmp_path)
    trace_id = request(telemetry)
    telemetry.close(timeout=5)
    lines = (tmp_path / "spans" / "traces.jsonl").read_text().splitlines()
    spans = [json.loads(line) for line in lines]
    assert len(spans) == 2 and {s["context"]["trace_id"] for s in spans} == {f"0x{trace_id}"}
    again = build_telemetry(section, read_otel_environment({}), base_dir=tmp_path)
    request(again)
    again.close(timeout=5)  # a restart appends
    assert len((tmp_path / "spans" / "traces.jsonl").read_text().splitlines()) == 4


def test_an_unwritable_traces_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"telemetry\.traces_file: cannot write"):
        build_telemetry(TelemetrySection(traces_file=str(tmp_path / "file" / "x")),
                        read_otel_environment({}))


def test_describe_names_every_destination() -> None:
    otel = read_otel_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:pw@c:4318",
                                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    text = describe(TelemetrySection(), otel, Path("/x/t.jsonl"))
    assert text == ("spans to otlp_http, file /x/t.jsonl; metrics to otlp_http, "
                    "/metrics on the admin port")
    assert "pw" not in text


def test_repeated_export_failures_are_logged_once_a_minute() -> None:
    now = [0.0]
    repeat = RepeatFilter(window=60, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("opentelemetry.exporter.x", logging.WARNING, __file__, 1,
                                 msg, ("localhost:4317",), None)

    assert repeat.filter(record("Failed to export to %s"))
    assert not repeat.filter(record("Failed to export to %s"))
    assert repeat.filter(record("another message %s"))
    now[0] = 61.0
    later = record("Failed to export to %s")
    assert repeat.filter(later)
    assert "1 more like this in the last 60s were not logged" in later.getMessage()


@pytest.mark.integration
def test_serve_writes_spans_to_the_file_named_in_the_environment(
        tmp_path: Path, upstream_url: str) -> None:
    path = tmp_path / "traces.jsonl"
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config, env={"LLM_SHADOW_TRACES_FILE": str(path)}) as proxy:
        reply = httpx.post(proxy.url + "/openai/v1/chat/completions",
                           headers={"x-request-id": "traced-request"},
                           json={"model": "m", "messages": []})
        assert reply.status_code == 200
    # SIGTERM flushed the queue: the span is in the file.
    wait_for(lambda: path.exists() and "traced-request" in path.read_text(),
             message="the span in the file")
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    server = next(s for s in spans if s["attributes"].get("llm_shadow.request.id")
                  == "traced-request")
    assert server["kind"] == "SpanKind.SERVER"
    assert f"spans to file {path}" in proxy.log()
