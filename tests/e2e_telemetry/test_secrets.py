"""End to end: the legacy client's credentials (`Authorization: Bearer
sk-TEST-SENTINEL`, `api-key: SENTINEL2`, `x-api-key: SENTINEL3`, `?key=SENTINEL4`) go to
the legacy upstream, as they must, and nowhere else: not into any exported span, event
or metric (OTLP and the `/metrics` scrape), not into the proxy's log at debug level, not
into an error body the proxy wrote, and never to the orchestrator's model servers.

Every request of this package carries all four sentinels (`stack.openai_client`); the
traffic here adds the paths most likely to leak: errors, fallbacks and streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.e2e_telemetry.stack import (
    SENTINEL_HEADERS,
    SENTINELS,
    Stack,
    chat,
    message,
    new_request_id,
)
from tests.fakes.models import ModelBehaviour
from tests.fakes.servers import wait_for
from tests.fakes.upstream import Recorded

pytestmark = pytest.mark.integration

WORKFLOW = "invoke_workflow orchestrator"
RAW_HEADERS = {"authorization": f"Bearer {SENTINELS[0]}", **SENTINEL_HEADERS}
QUERY = f"key={SENTINELS[3]}"


@dataclass
class Traffic:
    stack: Stack
    request_ids: list[str]
    error_bodies: list[bytes]
    upstream_requests: list[Recorded]
    model_requests: dict[str, list[Recorded]]


def raw_post(stack: Stack, path: str, request_id: str) -> httpx.Response:
    """A request the SDKs cannot make: sentinels plus a path the proxy refuses or an
    upstream it cannot reach."""
    return httpx.post(f"{stack.proxy.url}{path}?{QUERY}", timeout=30,
                      headers={**RAW_HEADERS, "x-request-id": request_id},
                      json={"model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": "leak?"}]})


@pytest.fixture(scope="module")
def traffic(running: Stack) -> Traffic:
    stack = running
    stack.reset()
    ids: list[str] = []
    bodies: list[bytes] = []
    expect: dict[str, list[str]] = {}

    def sent(request_id: str, *spans: str) -> None:
        ids.append(request_id)
        expect[request_id] = list(spans)

    for stream in (False, True):
        sent(chat(stack.url("/openai"), "legacy", stream=stream, include_usage=stream)[0],
             "role:legacy")
        sent(message(stack.url("/anthropic"), "legacy", stream=stream)[0], "role:legacy")
        sent(chat(stack.url("/shadow/openai"), "shadow", stream=stream)[0],
             "role:legacy", "role:orchestrator", "comparison")
        sent(message(stack.url("/shadow/anthropic"), "shadow", stream=stream)[0],
             "role:legacy", "role:orchestrator", "comparison")
        sent(chat(stack.url("/divert/openai"), "divert", stream=stream)[0],
             "role:orchestrator", "role:shadow", "comparison")
    limited = new_request_id("429")
    with pytest.raises(openai.RateLimitError):
        chat(stack.url("/openai"), "limited", headers={"x-fake-status": "429"},
             request_id=limited)
    sent(limited, "role:legacy")
    unreachable = new_request_id("502")
    response = raw_post(stack, "/dead/openai/v1/chat/completions", unreachable)
    assert response.status_code == 502
    bodies.append(response.content)
    sent(unreachable, "role:legacy")
    response = raw_post(stack, "/nowhere/v1/chat/completions", new_request_id("404"))
    assert response.status_code == 404
    bodies.append(response.content)
    model_requests = {model.name: list(model.requests) for model in stack.fleet}
    for model in stack.fleet:
        model.behaviour = ModelBehaviour(status=503)
    try:
        sent(chat(stack.url("/divert/openai"), "fallback")[0], WORKFLOW, "role:legacy")
        for request_id in ids:
            stack.trace(request_id, expect=expect[request_id])
        wait_for_fresh_metrics(stack)
        return Traffic(stack, ids, bodies, list(stack.upstream.requests), model_requests)
    finally:
        stack.reset()


def wait_for_fresh_metrics(stack: Stack) -> None:
    """Two metric exports after all traffic was recorded, so the OTLP bodies hold every
    series it produced (each export carries the always-present drop counter once)."""
    def exports() -> int:
        return sum(1 for metric in stack.receiver.metrics
                   if metric.name == "llm_shadow.telemetry.spans.dropped")

    before = exports()
    wait_for(lambda: exports() >= before + 2, timeout=15, message="two metric exports")


def leaks(text: str | bytes, secrets: Sequence[str] = SENTINELS) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [secret for secret in secrets if secret.encode() in data]


def test_the_sentinels_do_reach_the_legacy_upstream(traffic: Traffic) -> None:
    """Proof the test sends them: forwarding credentials to legacy is the proxy's job."""
    seen = [r for r in traffic.upstream_requests if r.path.endswith(("/completions",
                                                                     "/messages"))]
    assert seen
    for request in seen:
        assert request.header("authorization") == f"Bearer {SENTINELS[0]}"
        assert request.header("api-key") == SENTINELS[1]
        assert request.header("x-api-key") == SENTINELS[2]
        assert QUERY in request.query


def test_no_sentinel_in_anything_exported_over_otlp(traffic: Traffic) -> None:
    receiver = traffic.stack.receiver
    assert receiver.metrics and receiver.find_spans()
    for secret in SENTINELS:
        assert not receiver.contains(secret.encode()), secret
    for headers in receiver.request_headers:
        assert not leaks(repr(headers))


def test_the_query_is_recorded_with_credentials_redacted(traffic: Traffic) -> None:
    server = traffic.stack.server_span(traffic.request_ids[0])
    assert server.attributes["url.path"] == "/openai/v1/chat/completions"
    assert server.attributes["url.query"] == "key=REDACTED"


def test_no_sentinel_in_the_prometheus_scrape(traffic: Traffic) -> None:
    text = traffic.stack.scrape()
    assert "gen_ai_client_operation_duration_seconds" in text
    assert not leaks(text)


def test_no_sentinel_in_the_debug_log(traffic: Traffic) -> None:
    log = traffic.stack.proxy.log()
    assert " DEBUG " in log  # the proxy really ran at debug level
    assert "fell back to legacy" in log  # and logged the requests made here
    assert not leaks(log), [line for line in log.splitlines() if leaks(line)][:5]


def test_no_sentinel_in_the_proxys_error_bodies(traffic: Traffic) -> None:
    assert len(traffic.error_bodies) == 2
    for body in traffic.error_bodies:
        assert b'"error"' in body
        assert not leaks(body), body


def test_legacy_credentials_never_reach_the_models(traffic: Traffic) -> None:
    requests = traffic.model_requests
    assert requests["alpha"] and requests["beta"]
    for name, received in requests.items():
        for request in received:
            everything = repr(request.headers).encode() + request.body + request.query.encode()
            assert not leaks(everything), (name, request.headers)
            assert request.header("api-key") is None
    assert {r.header("authorization") for r in requests["alpha"]} == {"Bearer sk-model-alpha"}
    assert {r.header("x-api-key") for r in requests["beta"]} == {"sk-model-beta"}
