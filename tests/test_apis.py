"""Which API a path speaks, and which of them the built-in orchestrator answers: one
classification for usage, comparison, the orchestrator and span names."""

from __future__ import annotations

import pytest

from proxy.apis import api_for_path, parse_payload, request_model, wire_format_for


@pytest.mark.parametrize(("path", "provider", "api"), [
    ("/v1/chat/completions", "openai", "openai_chat"),
    ("/openai/v1/chat/completions?x=1", None, "openai_chat"),
    ("/v1/responses", "openai", "openai_responses"),
    ("/v1/embeddings", "openai", "openai_embeddings"),
    ("/v1/messages", "anthropic", "anthropic_messages"),
    ("/v1/threads/t1/messages", "openai", None),
    ("/v1/models", "openai", None),
])
def test_api_for_path(path: str, provider: str | None, api: str | None) -> None:
    assert api_for_path(path, provider) == api


@pytest.mark.parametrize(("body", "payload"), [
    (b'{"model": "m", "stream": true}', {"model": "m", "stream": True}),
    (b"[1, 2]", None),
    (b"not json", None),
    (b"", None),
    (None, None),
])
def test_only_a_json_object_is_a_payload(body: bytes | None, payload: object) -> None:
    assert parse_payload(body) == payload


def test_the_request_model_is_a_string_or_nothing() -> None:
    assert request_model({"model": "gpt-4o"}) == "gpt-4o"
    assert request_model({"model": 4}) is None
    assert request_model(None) is None


@pytest.mark.parametrize(("provider", "path", "expected"), [
    ("openai", "/v1/chat/completions", "openai_chat"),
    ("openai", "/v1/chat/completions?x=1", "openai_chat"),
    ("anthropic", "/v1/messages", "anthropic_messages"),
    ("anthropic", "/v1/chat/completions", "openai_chat"),  # Anthropic's OpenAI-compatible API
    ("openai", "/v1/embeddings", None),
    ("openai", "/v1/responses", None),
    ("openai", "/v1/messages", None),
])
def test_which_requests_the_orchestrator_can_answer(provider: str, path: str,
                                                    expected: str | None) -> None:
    assert wire_format_for(provider, path) == expected
