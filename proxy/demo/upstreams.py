"""The demo's fake LLM APIs, as small ASGI apps: the legacy upstream (OpenAI-compatible
chat completions, streaming and not, with the usage chunk when asked) and the
orchestrator's models (the same API, non-streaming, as the pipeline calls them).

Layer: adapter (plain ASGI; what they say comes from `proxy.demo.atlas`). Each checks
its own API key, so the demo shows the legacy key going to legacy only and each model
getting its own. Latencies are drawn from a seeded generator, a little different per
model, so the latency report has something to show.

`Regression` is the switch the demo flips: the models start answering wrong (`wrong`),
failing (`error`, HTTP 500) or late (`slow`).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from proxy.asgi import Receive, Scope, Send
from proxy.demo import atlas

Mode = Literal["wrong", "error", "slow"]
MODES: tuple[Mode, ...] = ("wrong", "error", "slow")
SLOW_EXTRA_SECONDS = 3.0
MAX_BODY = 1024 * 1024

REGRESSION_STORIES: dict[Mode, str] = {
    "wrong": "the orchestrator's models start answering other users' questions, a "
             "cross-talk bug: wrong answers",
    "error": "the orchestrator's models start failing with HTTP 500",
    "slow": f"the orchestrator's models answer {SLOW_EXTRA_SECONDS:g} s later than before",
}


class Regression:
    """The fault injected into every fake model at once (None: healthy)."""

    def __init__(self) -> None:
        self.mode: Mode | None = None
        self.since: float | None = None

    def inject(self, mode: Mode) -> None:
        self.mode, self.since = mode, time.monotonic()


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds before the first byte, drawn uniformly; `per_word` between streamed words."""

    low: float
    high: float
    per_word: float = 0.006


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Mapping[str, Any]


class FakeLegacy:
    """The legacy LLM API: the model the legacy service calls today."""

    def __init__(self, api_key: str, rng: random.Random,
                 latency: Latency = Latency(0.12, 0.35)):
        self.api_key = api_key
        self.rng = rng
        self.latency = latency
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        payload, problem = await _request(scope, receive, self.api_key)
        if problem is not None:
            await _send_json(send, problem.status, problem.body)
            return
        self.calls += 1
        question = atlas.understand(payload.get("messages") or [])
        text = atlas.legacy_answer(question, self.rng)
        await asyncio.sleep(self.rng.uniform(self.latency.low, self.latency.high))
        model = str(payload.get("model") or "gpt-4o-mini")
        usage = _usage(payload.get("messages") or [], text)
        if payload.get("stream"):
            options = payload.get("stream_options") or {}
            await _stream(send, model, text, usage if options.get("include_usage") else None,
                          self.latency.per_word)
        else:
            await _send_json(send, 200, _completion(model, text, usage))


class FakeModel:
    """One of the orchestrator's models (OpenAI-compatible, answers in one body)."""

    def __init__(self, name: str, api_key: str, rng: random.Random, latency: Latency,
                 regression: Regression):
        self.name = name
        self.api_key = api_key
        self.rng = rng
        self.latency = latency
        self.regression = regression
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        payload, problem = await _request(scope, receive, self.api_key)
        if problem is not None:
            await _send_json(send, problem.status, problem.body)
            return
        self.calls += 1
        reply = await self._reply(payload)
        await _send_json(send, reply.status, reply.body)

    async def _reply(self, payload: Mapping[str, Any]) -> Reply:
        mode = self.regression.mode
        delay = self.rng.uniform(self.latency.low, self.latency.high)
        await asyncio.sleep(delay + (SLOW_EXTRA_SECONDS if mode == "slow" else 0.0))
        if mode == "error":
            return Reply(500, _error("The server had an error while processing your request.",
                                     "server_error"))
        question = atlas.understand(payload.get("messages") or [])
        text = (atlas.cross_talk_answer(question) if mode == "wrong"
                else atlas.plain_answer(question))
        model = str(payload.get("model") or self.name)
        return Reply(200, _completion(model, text, _usage(payload.get("messages") or [], text)))


# --- the wire ------------------------------------------------------------------------------


async def _request(scope: Scope, receive: Receive, api_key: str
                   ) -> tuple[dict[str, Any], Reply | None]:
    """The JSON body of a chat completion request, or the error reply to send instead."""
    if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
        return {}, Reply(404, _error(f"Unknown request URL: {scope['method']} "
                                     f"{scope['path']}", "invalid_request_error"))
    headers = dict(scope["headers"])
    if headers.get(b"authorization", b"") != f"Bearer {api_key}".encode():
        return {}, Reply(401, _error("Incorrect API key provided.", "invalid_request_error",
                                     "invalid_api_key"))
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return {}, Reply(499, _error("client went away", "invalid_request_error"))
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            return {}, Reply(413, _error("request too large", "invalid_request_error"))
        if not message.get("more_body"):
            break
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}, Reply(400, _error("We could not parse the JSON body of your request.",
                                     "invalid_request_error"))
    if not isinstance(payload, dict):
        return {}, Reply(400, _error("The body must be a JSON object.", "invalid_request_error"))
    return payload, None


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _usage(messages: Sequence[Mapping[str, Any]], text: str) -> dict[str, int]:
    prompt = sum(len(atlas.text_of(m.get("content"))) for m in messages) // 4 + 4 * len(messages)
    completion = len(text) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _completion(model: str, text: str, usage: Mapping[str, int]) -> dict[str, Any]:
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_demo",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": dict(usage)}


async def _send_json(send: Send, status: int, body: Mapping[str, Any]) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def _stream(send: Send, model: str, text: str, usage: Mapping[str, int] | None,
                  per_word: float) -> None:
    """Server-sent events as OpenAI sends them: a role chunk, content chunks, a finish
    chunk, the usage chunk when the client asked for it, then `[DONE]`."""
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_demo"}
    extra = {"usage": None} if usage is not None else {}

    def event(choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        return {"type": "http.response.body", "more_body": True,
                "body": b"data: " + orjson.dumps({**base, "choices": choices, **extra,
                                                   **more}) + b"\n\n"}

    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache")]})
    await send(event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                       "finish_reason": None}]))
    for word in atlas.words(text):
        await asyncio.sleep(per_word)
        await send(event([{"index": 0, "delta": {"content": word}, "finish_reason": None}]))
    await send(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if usage is not None:
        await send(event([], usage=dict(usage)))
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
