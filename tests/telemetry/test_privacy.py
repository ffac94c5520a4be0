"""Credentials never leave through telemetry: sentinel keys passed through
every input of the recording API appear in no exported span, event or metric, no console
output, no log line and no Prometheus scrape."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from proxy.config.telemetry import TelemetrySection
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.records import Comparison, ModelCall
from proxy.telemetry.scrape import exposition
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.telemetry.conftest import SENTINELS, Memory

HEADERS = [(b"authorization", b"Bearer sk-TEST-SENTINEL"), (b"api-key", b"SENTINEL2"),
           (b"x-api-key", b"SENTINEL3"), (b"cookie", b"session=SENTINEL5"),
           (b"x-request-id", b"req-9"), (b"user-agent", b"OpenAI/Python 1.60")]
LEAKY_ERROR = "ConnectError: https://u:SENTINEL5@api.example/v1?key=SENTINEL4 refused"


def record_everything(telemetry: Telemetry) -> None:
    trace = telemetry.start_request(
        "POST", "/gemini", "/gemini/v1beta/models/x:generateContent?key=SENTINEL4&alt=sse",
        "req-9", "u:SENTINEL5@127.0.0.1", 8787, headers=HEADERS)
    now = time.monotonic()
    telemetry.record_model_call(trace, ModelCall(
        role="legacy", operation="chat", provider="gcp.gemini", request_model="gemini-pro",
        start=now, end=now + 0.1, server_address="https://u:SENTINEL5@api.example/v1?key=x",
        server_port=443, error_type=LEAKY_ERROR, input_tokens=1, output_tokens=1,
        cost_usd=0.1))
    telemetry.record_comparison(trace, Comparison(route="/gemini", score=1.0, label="major",
                                                  error_type=LEAKY_ERROR))
    telemetry.end_request(trace, 502, "shadow", error_type=LEAKY_ERROR)


def assert_clean(data: bytes | str, where: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for sentinel in SENTINELS:
        assert sentinel not in raw, f"{sentinel!r} leaked into {where}"


def test_no_sentinel_in_otlp_console_logs_or_scrape(
        receiver: OtlpReceiver, build: Callable[..., Telemetry], otlp_env: Callable[..., None],
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    otlp_env(OTEL_TRACES_EXPORTER="otlp,console", OTEL_METRICS_EXPORTER="otlp,console",
             OTEL_EXPORTER_OTLP_HEADERS='authorization=Bearer "SENTINEL5",x-tenant=a')
    caplog.set_level(logging.DEBUG)
    telemetry = build(TelemetrySection(capture_request_headers=("x-request-id",)))
    record_everything(telemetry)
    telemetry.flush()
    spans = receiver.wait_for_spans(3)
    receiver.wait_for_metric("gen_ai.client.operation.duration")

    scrape = exposition(telemetry.providers.registry, None)[0]  # type: ignore[arg-type]
    telemetry.close()  # the console exporters' last write, before capsys closes stdout
    for body in receiver.bodies:
        assert_clean(body, "an OTLP request")
    assert_clean(capsys.readouterr().out, "console output")
    assert_clean(caplog.text, "the log")
    assert_clean(scrape, "/metrics")
    # What was recorded instead.
    server = next(span for span in spans if span.kind == "SERVER")
    assert server.attributes["http.request.header.x-request-id"] == ["req-9"]
    assert server.attributes["url.query"] == "key=REDACTED&alt=sse"
    assert server.attributes["server.address"] == "127.0.0.1"
    assert server.attributes["error.type"] == "_OTHER"
    client = next(span for span in spans if span.kind == "CLIENT")
    assert client.attributes["server.address"] == "api.example"
    assert client.attributes["error.type"] == "_OTHER"


def test_header_allow_list_refuses_credentials_even_when_built_by_hand(
        memory: Callable[..., Memory]) -> None:
    recorder = memory(header_allow=["authorization", "api-key", "x-api-key", "cookie",
                                    "user-agent"])
    trace = recorder.telemetry.start_request("POST", "/openai", "/openai/v1/x", "r",
                                             headers=HEADERS)
    recorder.telemetry.end_request(trace, 200)
    (span,) = recorder.finished()
    recorded = {key: value for key, value in (span.attributes or {}).items()
                if key.startswith("http.request.header.")}
    assert recorded == {"http.request.header.user-agent": ("OpenAI/Python 1.60",)}


@pytest.mark.parametrize("name", ["authorization", "API-Key", "x-api-key", "cookie",
                                  "x-goog-api-key", "x-auth-token", "proxy-authorization"])
def test_config_rejects_credential_headers(name: str) -> None:
    with pytest.raises(ValueError, match="never recorded"):
        TelemetrySection(capture_request_headers=(name,))
