"""Which LLM API an upstream path speaks (the one classification every part of the proxy
uses: usage parsing, answer extraction, the orchestrator, span names), and the JSON
request body it carries.

Layer: pure core. The rule looks at the end of the path, so it holds for any base URL
(`/v1/chat/completions`, `/openai/deployments/x/chat/completions`, ...):

    .../chat/completions   openai_chat         (any provider: Anthropic serves it too)
    .../responses          openai_responses
    .../embeddings         openai_embeddings
    .../messages           anthropic_messages  (Anthropic routes only: OpenAI's Assistants
                                                API has `/threads/{id}/messages`)

Anything else (models lists, files, the legacy `/completions`) is not an LLM call the
proxy reads: it is relayed and nothing more. The orchestrator answers only the two chat
dialects (`wire_format_for`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

import orjson

Api = Literal["openai_chat", "openai_responses", "anthropic_messages", "openai_embeddings"]
# The dialects the built-in orchestrator reads and answers in.
WireFormat = Literal["openai_chat", "anthropic_messages"]


@functools.lru_cache(maxsize=1024)
def api_for_path(path: str, provider: str | None = None) -> Api | None:
    """The API of an upstream path; `provider` None means the route's is unknown."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.endswith("/chat/completions"):
        return "openai_chat"
    if path.endswith("/responses"):
        return "openai_responses"
    if path.endswith("/embeddings"):
        return "openai_embeddings"
    if path.endswith("/messages") and provider in (None, "anthropic"):
        return "anthropic_messages"
    return None



def wire_format_for(provider: str, path: str) -> WireFormat | None:
    """The dialect of a request the built-in orchestrator can answer, or None (embeddings,
    the Responses API, ...: those stay legacy-only)."""
    return wire_format(api_for_path(path, provider))


def wire_format(api: Api | None) -> WireFormat | None:
    if api == "openai_chat" or api == "anthropic_messages":
        return api
    return None


def parse_payload(body: bytes | None) -> Mapping[str, Any] | None:
    """The client's JSON request body, or None when it is absent or not a JSON object."""
    if not body:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def request_model(payload: Mapping[str, Any] | None) -> str | None:
    model = payload.get("model") if payload else None
    return model if isinstance(model, str) else None
