"""Building SSE streams and bodies of the three wire formats for usage tests."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.apis import Api
from proxy.usage.meter import UsageMeter, UsageRecord


def data(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def event(name: str, obj: Any) -> bytes:
    return f"event: {name}\n".encode() + data(obj)


def chunk(content: str | None = None, *, finish: str | None = None, usage: Any = "absent",
          choices: bool = True) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                            "created": 1, "model": "gpt-4o-mini-2024-07-18"}
    delta = {} if content is None else {"content": content}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
    if usage != "absent":
        body["usage"] = usage
    return data(body)


def chat_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


DONE = b"data: [DONE]\n\n"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def meter(api: Api, body: bytes, request: Any = None) -> UsageRecord:
    m = UsageMeter(api)
    m.feed(body)
    return m.finish(request=request)
