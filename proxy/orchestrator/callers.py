"""Calling models over HTTP: OpenAI-compatible chat completions and Anthropic messages.

Layer: adapter (httpx, through `proxy.transport.build_client`, whose `upstream_errors`
is the one place transport exceptions are mapped). Requests are built from scratch: the
only credential sent is the model's own key, read by the configuration loader from the
environment variable named by `api_key_env` (`Settings.model_keys`); the legacy client's
`Authorization`/`x-api-key` never reaches a model, and the key appears in no log, error
or record. W3C trace headers are passed on so each model call joins the request's trace.

`base_url` is taken as that provider's own SDK takes it: with `/v1` for OpenAI-compatible
APIs (`https://api.deepseek.com/v1` → `.../v1/chat/completions`), without it for
Anthropic (`https://api.anthropic.com` → `.../v1/messages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from proxy.errors import UpstreamFailed
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.request import ModelRequest
from proxy.orchestrator.wire import (
    ANTHROPIC_VERSION,
    MalformedReply,
    Reply,
    anthropic_request,
    openai_request,
    parse_anthropic_reply,
    parse_openai_reply,
)
from proxy.transport import upstream_errors

DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1",
                     "anthropic": "https://api.anthropic.com"}
TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})
MAX_REPLY_BYTES = 16 * 1024 * 1024


class ModelHttpError(UpstreamFailed):
    """The model's API answered with an error status. Only the status is kept: provider
    error bodies may echo a (masked) key."""

    def __init__(self, host: str, status: int):
        super().__init__(f"model API {host} answered {status}", code=f"http_{status}")
        self.http_status = status


class ReplyUnreadable(UpstreamFailed):
    code = "malformed_reply"


class HttpModelCaller:
    """`await caller(model, request) -> Reply` for any configured model."""

    def __init__(self, client: httpx.AsyncClient, keys: Mapping[str, SecretStr],
                 *, default_timeout: float = 30.0, connect_timeout: float = 5.0):
        self._client = client
        self.keys = keys  # replaced on a configuration reload
        self.default_timeout = default_timeout
        self._connect_timeout = connect_timeout

    async def __call__(self, model: AIModel, request: ModelRequest) -> Reply:
        url, body, headers = self.build(model, request)
        host = httpx.URL(url).host
        timeout = model.timeout_seconds or self.default_timeout
        http_request = httpx.Request(
            "POST", url, headers=headers, content=orjson.dumps(body),
            extensions={"timeout": {"connect": min(self._connect_timeout, timeout),
                                    "read": timeout, "write": timeout, "pool": timeout}})
        with upstream_errors(host):
            response = await self._client.send(http_request, stream=True)
            try:
                raw = await _read_capped(response, host)
            finally:
                await response.aclose()
        if response.status_code >= 400:
            raise ModelHttpError(host, response.status_code)
        try:
            data = orjson.loads(raw)
            if model.api == "anthropic":
                return parse_anthropic_reply(data, request.structured)
            return parse_openai_reply(data, request.structured)
        except (orjson.JSONDecodeError, MalformedReply) as exc:
            raise ReplyUnreadable(f"model API {host} sent an unreadable reply") from exc

    def build(self, model: AIModel, request: ModelRequest) -> tuple[str, dict[str, Any],
                                                                    list[tuple[str, str]]]:
        """URL, body and headers of the call (no I/O; tests and dry runs use it)."""
        base = (model.base_url or DEFAULT_BASE_URLS[model.api]).rstrip("/")
        headers = [("content-type", "application/json"), ("accept", "application/json"),
                   ("accept-encoding", "identity"), ("user-agent", "llm-shadow-orchestrator")]
        key = self.keys.get(model.name)
        if model.api == "anthropic":
            url, body = base + "/v1/messages", anthropic_request(
                request.conversation, model, request.max_tokens)
            headers.append(("anthropic-version", ANTHROPIC_VERSION))
            if key is not None:
                headers.append(("x-api-key", key.get_secret_value()))
        else:
            url, body = base + "/chat/completions", openai_request(
                request.conversation, model, request.max_tokens)
            if key is not None:
                headers.append(("authorization", "Bearer " + key.get_secret_value()))
        headers.extend((name, value) for name, value in request.trace_headers
                       if name.lower() in TRACE_HEADERS)
        return url, body, headers


async def _read_capped(response: httpx.Response, host: str) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise ReplyUnreadable(f"model API {host} sent more than {MAX_REPLY_BYTES} bytes")
    return bytes(body)
