"""Hop-by-hop and header hygiene — the pure rules, then on the wire."""

from __future__ import annotations

import gzip

import httpx
import pytest

from proxy.headers import client_response_headers, upstream_request_headers
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.rawhttp import exchange, status_of
from tests.fakes.upstream import FakeUpstream


@pytest.mark.parametrize("name", [
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding",
    b"upgrade", b"proxy-authorization", b"trailer", b"x-forwarded-for", b"forwarded",
    b"x-forwarded-host", b"x-real-ip", b"via", b"host", b"x-llm-shadow-decision",
])
def test_request_headers_that_never_reach_the_upstream(name: bytes) -> None:
    assert upstream_request_headers([(name, b"v"), (b"x-keep", b"1")]) == [(b"x-keep", b"1")]


def test_connection_listed_fields_are_dropped_both_ways() -> None:
    headers = [(b"connection", b"close, X-Internal-Debug"), (b"x-internal-debug", b"1"),
               (b"authorization", b"Bearer k")]
    assert upstream_request_headers(headers) == [(b"authorization", b"Bearer k")]
    response = [(b"connection", b"x-upstream-secret"), (b"x-upstream-secret", b"s"),
                (b"keep-alive", b"timeout=5"), (b"transfer-encoding", b"chunked"),
                (b"content-encoding", b"gzip"), (b"content-length", b"10")]
    assert client_response_headers(response) == [(b"content-encoding", b"gzip"),
                                                  (b"content-length", b"10")]


def test_repeated_headers_keep_their_order() -> None:
    headers = [(b"x-foo", b"1"), (b"x-bar", b"a"), (b"x-foo", b"2")]
    assert upstream_request_headers(headers) == headers


def test_header_hygiene_on_the_wire(passthrough_proxy: ProxyProcess,
                                    upstream: FakeUpstream, upstream_url: str) -> None:
    payload = (b"POST /openai/v1/chat/completions HTTP/1.1\r\n"
               b"Host: attacker.example\r\n"
               b"Connection: close, X-Internal-Debug\r\nX-Internal-Debug: 1\r\n"
               b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
               b"Proxy-Authorization: Basic abc\r\nX-Forwarded-For: 1.2.3.4\r\n"
               b"X-LLM-Shadow-Decision: divert\r\nX-Foo: one\r\nX-Foo: two\r\n"
               b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert status_of(exchange(passthrough_proxy.port, payload)) == 200
    [received] = upstream.requests
    names = [name for name, _ in received.headers]
    for dropped in ("connection", "x-internal-debug", "keep-alive", "proxy-connection", "te",
                    "proxy-authorization", "x-forwarded-for", "x-llm-shadow-decision"):
        assert dropped not in names
    assert received.header("host") == upstream_url.removeprefix("http://")
    assert [v for k, v in received.headers if k == "x-foo"] == ["one", "two"]


def test_upstream_hop_by_hop_headers_are_stripped(passthrough_proxy: ProxyProcess,
                                                     upstream: FakeUpstream) -> None:
    response = httpx.get(passthrough_proxy.url + "/openai/v1/models")
    assert response.status_code == 200
    assert "keep-alive" not in response.headers


def test_gzip_body_is_forwarded_raw_and_consistent(passthrough_proxy: ProxyProcess,
                                                      upstream: FakeUpstream) -> None:
    with httpx.Client() as client:
        request = client.build_request(
            "POST", passthrough_proxy.url + "/openai/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "zip"}]},
            headers={"x-fake-gzip": "1", "accept-encoding": "gzip"})
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
        response.close()
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(raw)
    assert b"Answer to: zip" in gzip.decompress(raw)


def test_crlf_injection_in_a_header_is_refused(passthrough_proxy: ProxyProcess,
                                                  upstream: FakeUpstream) -> None:
    payload = (b"GET /openai/v1/models HTTP/1.1\r\nHost: x\r\n"
               b"X-Evil: a\rInjected: yes\r\nConnection: close\r\n\r\n")
    assert status_of(exchange(passthrough_proxy.port, payload)) == 400
    assert upstream.requests == []


def test_the_proxy_adds_no_headers_of_its_own(passthrough_proxy: ProxyProcess,
                                              upstream: FakeUpstream) -> None:
    payload = (b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: 2\r\n"
               b"Connection: close\r\n\r\n{}")
    assert status_of(exchange(passthrough_proxy.port, payload)) == 200
    [received] = upstream.requests
    assert sorted(name for name, _ in received.headers) == [
        "content-length", "content-type", "host"]


def test_responses_name_the_request_id_without_replacing_the_providers() -> None:
    from proxy.headers import tagged

    assert tagged([(b"content-type", b"application/json")], "r1", b"x-request-id") == [
        (b"content-type", b"application/json"), (b"x-llm-shadow-request-id", b"r1"),
        (b"x-request-id", b"r1")]
    provider = [(b"x-request-id", b"req_provider")]
    assert tagged(provider, "r1", b"x-request-id") == [
        (b"x-request-id", b"req_provider"), (b"x-llm-shadow-request-id", b"r1")]
