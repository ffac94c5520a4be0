"""Redaction of URLs, query strings, hosts, error codes, and the text and JSON of kept
answers (table-driven)."""

from __future__ import annotations

import pytest

from proxy.telemetry.redaction import (
    credentials_in,
    header_attributes,
    is_sensitive_name,
    redact_json,
    redact_query,
    redact_text,
    redact_url,
    safe_error_type,
    safe_host,
    split_path,
)


@pytest.mark.parametrize("url, expected", [
    ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
    ("https://user:pw@host:8443/p?x=1", "https://REDACTED:REDACTED@host:8443/p?x=1"),
    ("https://g.example/v1beta/m:gen?key=SECRET&alt=sse",
     "https://g.example/v1beta/m:gen?key=REDACTED&alt=sse"),
    ("https://a.example/x?api-key=S&api_key=S&apikey=S&token=S&sig=S&X-Amz-Signature=S",
     "https://a.example/x?api-key=REDACTED&api_key=REDACTED&apikey=REDACTED&token=REDACTED"
     "&sig=REDACTED&X-Amz-Signature=REDACTED"),
    ("https://a.example/cb#access_token=S", "https://a.example/cb"),
    ("https://a.example/x?api-version=2024-10-21", "https://a.example/x?api-version=2024-10-21"),
    ("http://[::1]:80/x?client_secret=S", "http://[::1]:80/x?client_secret=REDACTED"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_unparseable_url_is_fully_redacted() -> None:
    assert redact_url("http://[::1/x?key=S") == "REDACTED"


@pytest.mark.parametrize("query, expected", [
    ("", ""), ("a=1&b", "a=1&b"), ("Key=S", "Key=REDACTED"),
    ("x-goog-api-key=S&n=2", "x-goog-api-key=REDACTED&n=2"),
    ("session_id=S", "session_id=REDACTED"), ("password=S", "password=REDACTED"),
])
def test_redact_query(query: str, expected: str) -> None:
    assert redact_query(query) == expected


def test_split_path() -> None:
    assert split_path("/v1/x?key=S&b=1") == ("/v1/x", "key=REDACTED&b=1")
    assert split_path("/v1/x") == ("/v1/x", "")


@pytest.mark.parametrize("value, expected", [
    ("api.openai.com", "api.openai.com"), ("api.openai.com:443", "api.openai.com"),
    ("https://u:p@api.example:8443/v1?key=S", "api.example"), ("[::1]:8080", "[::1]"),
    ("u:SECRET@10.0.0.1", "10.0.0.1"),
])
def test_safe_host(value: str, expected: str) -> None:
    assert safe_host(value) == expected


@pytest.mark.parametrize("value, expected", [
    (None, None), ("timeout", "timeout"), ("429", "429"), ("rate_limit_exceeded",) * 2,
    ("httpx.ConnectError", "httpx.ConnectError"), ("overloaded_error",) * 2,
    ("connect failed: https://x?key=S", "_OTHER"), ("a b", "_OTHER"), ("", "_OTHER"),
    ("x" * 65, "_OTHER"), ("https://host/path", "_OTHER"),
])
def test_safe_error_type(value: str | None, expected: str | None) -> None:
    assert safe_error_type(value) == expected


@pytest.mark.parametrize("name", ["Authorization", "api-key", "X-Api-Key", "cookie",
                                  "x-goog-api-key", "x-amz-security-token", "client_secret",
                                  "X-Auth-Token", "ocp-apim-subscription-key"])
def test_sensitive_names(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize("name", ["content-type", "user-agent", "x-request-id",
                                  "x-conversation-id", "api-version", "alt"])
def test_ordinary_names(name: str) -> None:
    assert not is_sensitive_name(name)


def test_header_attributes_keep_repeats_and_order() -> None:
    headers = [(b"x-tag", b"a"), (b"authorization", b"Bearer S"), (b"x-tag", b"b")]
    assert header_attributes(headers, frozenset({b"x-tag", b"authorization"})) == {
        "http.request.header.x-tag": ["a", "b"]}
    assert header_attributes(headers, frozenset()) == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("Use api_key=sk-1234 now", "Use api_key=REDACTED now"),
    ('{"password": "hunter2", "name": "x"}', '{"password": "REDACTED", "name": "x"}'),
    ("Authorization: Bearer sk-abc and more", "Authorization: REDACTED and more"),
    ("see https://u:pw@h.io/p?key=abc&q=1#frag", "see https://REDACTED:REDACTED@h.io/p?key=REDACTED&q=1"),
    ("The capital of France is Paris.", "The capital of France is Paris."),
    ("max_tokens: 1024", "max_tokens: REDACTED"),  # by name pattern: over-redaction is safe
    ("token=REDACTED", "token=REDACTED"),
])
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_json_replaces_whole_values_under_credential_names() -> None:
    value = {"service": {"api_key": "sk-1", "Secret": [1, 2]}, "url": "http://a:b@h/",
             "items": [{"token": {"nested": "x"}}, "plain"]}
    assert redact_json(value) == {
        "service": {"api_key": "REDACTED", "Secret": "REDACTED"},
        "url": "http://REDACTED:REDACTED@h/",
        "items": [{"token": "REDACTED"}, "plain"]}


def test_credentials_in_finds_what_redaction_replaces() -> None:
    text = "api_key=sk-live-1 Authorization: Bearer tok-2 https://u:pw-3@h/?token=q-4&a=1"
    assert credentials_in(text) == {"sk-live-1", "tok-2", "u", "pw-3", "q-4"}
    assert credentials_in({"auth": {"password": "p-5"}, "list": ["secret=s-6"]}) == \
        {"p-5", "s-6"}
    assert credentials_in("nothing here") == set()
