"""A fake OpenAI- and Anthropic-compatible LLM upstream, served for real on loopback.

It answers `/v1/chat/completions`, `/v1/messages`, `/v1/responses` and `/v1/embeddings`
(streaming included, with `stream_options.include_usage`), records every request it
receives, and injects faults. Behaviour is chosen per request by `x-fake-*` headers (the
proxy forwards them like any other header) or for every request by `Behaviour` defaults,
which tests set in-process or through `POST /__fake/behaviour`:

    x-fake-status: 429            answer with this status and an OpenAI error body
    x-fake-latency-ms: 200        wait before the response headers
    x-fake-chunk-delay-ms: 100    wait between streamed events
    x-fake-chunks: 10             number of content chunks when streaming
    x-fake-reset-after: 3         abort the connection after this many streamed events
    x-fake-hang: headers|body     never send headers / stop sending after the first event
    x-fake-gzip: 1                gzip the (non-streaming) body with Content-Encoding
    x-fake-answer: text           the assistant's answer (default: derived from the prompt)
    x-fake-usage: none            omit usage even when asked for it
    x-fake-redirect: URL          answer 302 with this Location

The app is plain ASGI (no framework) so that it is fast enough to benchmark against, and
it shares no code with the proxy: a bug in the proxy's wire handling cannot cancel out.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson


@dataclass
class Behaviour:
    status: int = 200
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    chunks: int = 5
    reset_after: int | None = None
    hang: str | None = None
    gzip: bool = False
    answer: str | None = None
    usage: bool = True
    redirect: str | None = None
    model: str | None = None
    # Answer with invalid JSON that claims to be JSON (for divert/validation tests).
    garbage: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float
    finished_at: float | None = None
    disconnected: bool = False

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class FakeUpstream:
    """The ASGI app plus its recorded requests and default behaviour."""

    default: Behaviour = field(default_factory=Behaviour)
    requests: list[Recorded] = field(default_factory=list)
    record: bool = True
    active: int = 0
    max_active: int = 0
    # Requests whose headers arrived, and those whose body then never arrived whole.
    started: int = 0
    aborted_uploads: int = 0

    def reset(self) -> None:
        self.default = Behaviour()
        self.requests.clear()
        self.max_active = 0
        self.aborted_uploads = 0
        self.started = 0

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.started += 1
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.aborted_uploads += 1
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        path = scope["path"]
        if path.startswith("/__fake/"):
            await self._control(scope["method"], path, bytes(body), send)
            return
        recorded = Recorded(
            method=scope["method"],
            path=path,
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=bytes(body),
            received_at=time.monotonic(),
        )
        if self.record:
            self.requests.append(recorded)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self._answer(receive, send, recorded, self._behaviour(headers))
        except asyncio.CancelledError:
            recorded.disconnected = True
            raise
        finally:
            self.active -= 1
            recorded.finished_at = time.monotonic()

    def _behaviour(self, headers: list[tuple[str, str]]) -> Behaviour:
        b = replace(self.default)
        for key, value in headers:
            if not key.startswith("x-fake-"):
                continue
            name = key[len("x-fake-"):]
            if name == "status":
                b.status = int(value)
            elif name == "latency-ms":
                b.latency_ms = float(value)
            elif name == "chunk-delay-ms":
                b.chunk_delay_ms = float(value)
            elif name == "chunks":
                b.chunks = int(value)
            elif name == "reset-after":
                b.reset_after = int(value)
            elif name == "hang":
                b.hang = value
            elif name == "gzip":
                b.gzip = value == "1"
            elif name == "answer":
                b.answer = value
            elif name == "usage":
                b.usage = value != "none"
            elif name == "redirect":
                b.redirect = value
            elif name == "garbage":
                b.garbage = value == "1"
        return b

    async def _control(self, method: str, path: str, body: bytes, send: Any) -> None:
        if path == "/__fake/requests":
            payload = [
                {**asdict(r), "body": r.body.decode("utf-8", "replace")} for r in self.requests
            ]
            await _send_json(send, 200, payload)
        elif path == "/__fake/reset" and method == "POST":
            self.reset()
            await _send_json(send, 200, {"ok": True})
        elif path == "/__fake/behaviour" and method == "POST":
            self.default = Behaviour(**orjson.loads(body or b"{}"))
            await _send_json(send, 200, asdict(self.default))
        else:
            await _send_json(send, 404, {"error": "unknown control path"})

    async def _answer(self, receive: Any, send: Any, req: Recorded, b: Behaviour) -> None:
        if b.hang == "headers":
            await self._pause(None, asyncio.ensure_future(receive()))
            req.disconnected = True
            return
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        if b.redirect:
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", b.redirect.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if b.status >= 400:
            await _send_json(send, b.status, {"error": {
                "message": f"fake upstream status {b.status}", "type": "fake_error",
                "param": None, "code": str(b.status)}})
            return
        payload = _parse(req.body)
        route = req.path
        if route.endswith("/embeddings"):
            await _send_json(send, 200, embeddings(payload, b))
        elif route.endswith("/messages"):
            if payload.get("stream"):
                await self._stream(send, anthropic_events(payload, b), b, receive, req)
            else:
                await _send_json(send, 200, anthropic_message(payload, b), gzip_body=b.gzip)
        elif route.endswith("/responses"):
            if payload.get("stream"):
                await self._stream(send, responses_events(payload, b), b, receive, req)
            else:
                await _send_json(send, 200, responses_object(payload, b), gzip_body=b.gzip)
        elif route.endswith("/chat/completions"):
            if b.garbage:
                await _send_raw(send, 200, b'{"choices": [ not json', b"application/json")
            elif payload.get("stream"):
                await self._stream(send, chat_chunks(payload, b), b, receive, req)
            else:
                await _send_json(send, 200, chat_completion(payload, b), gzip_body=b.gzip)
        elif route.endswith("/models"):
            await _send_json(send, 200, {"object": "list", "data": [{"id": "fake-model",
                             "object": "model", "created": 0, "owned_by": "fake"}]})
        else:
            await _send_json(send, 200, {"echo": {"method": req.method, "path": req.path,
                                                  "query": req.query}})

    async def _stream(self, send: Any, events: list[bytes], b: Behaviour,
                      receive: Any = None, recorded: Recorded | None = None) -> None:
        """Stream `events`; stop early (and mark the request) if the client goes away, as a
        real provider stops generating when its client disconnects."""
        watcher = asyncio.ensure_future(receive()) if receive is not None else None
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-fake-upstream", b"1"),
        ]})
        try:
            for index, event in enumerate(events):
                if b.reset_after is not None and index >= b.reset_after:
                    raise ConnectionResetError("fake upstream reset mid-stream")
                if index and b.chunk_delay_ms:
                    await self._pause(b.chunk_delay_ms / 1000, watcher)
                if watcher is not None and watcher.done():
                    if recorded is not None:
                        recorded.disconnected = True
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if b.hang == "body":
                    await self._pause(None, watcher)
                    if recorded is not None:
                        recorded.disconnected = True
                    return
            await send({"type": "http.response.body", "body": b""})
        finally:
            if watcher is not None:
                watcher.cancel()

    @staticmethod
    async def _pause(seconds: float | None, watcher: Any) -> None:
        """Sleep (forever when `seconds` is None), waking early if the client disconnects."""
        if watcher is None:
            await asyncio.sleep(seconds if seconds is not None else 3600)
            return
        await asyncio.wait([watcher], timeout=seconds)


# --- wire formats -------------------------------------------------------------------


def _parse(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def prompt_text(payload: dict[str, Any]) -> str:
    messages = payload.get("messages") or []
    if not messages and isinstance(payload.get("input"), str):
        return str(payload["input"])
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def answer_for(payload: dict[str, Any], b: Behaviour) -> str:
    return b.answer if b.answer is not None else f"Answer to: {prompt_text(payload)}"


def usage_numbers(payload: dict[str, Any], answer: str) -> tuple[int, int]:
    prompt = prompt_text(payload)
    return max(1, len(prompt.split()) + 7), max(1, len(answer.split()))


def _id(payload: dict[str, Any], prefix: str) -> str:
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}-{digest[:20]}"


def _split(text: str, parts: int) -> list[str]:
    parts = max(1, parts)
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def chat_completion(payload: dict[str, Any], b: Behaviour) -> dict[str, Any]:
    answer = answer_for(payload, b)
    prompt_tokens, completion_tokens = usage_numbers(payload, answer)
    body: dict[str, Any] = {
        "id": _id(payload, "chatcmpl"),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": b.model or payload.get("model", "fake-model"),
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer,
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
    }
    if b.usage:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens,
                         "prompt_tokens_details": {"cached_tokens": 0},
                         "completion_tokens_details": {"reasoning_tokens": 0}}
    return body


def chat_chunks(payload: dict[str, Any], b: Behaviour) -> list[bytes]:
    answer = answer_for(payload, b)
    ident, model = _id(payload, "chatcmpl"), b.model or payload.get("model", "fake-model")
    include_usage = bool((payload.get("stream_options") or {}).get("include_usage")) and b.usage

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        data: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk",
                                "created": 1_700_000_000, "model": model,
                                "system_fingerprint": "fp_fake",
                                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish}]}
        if include_usage:
            data["usage"] = None
        return b"data: " + orjson.dumps(data) + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": piece}, None) for piece in _split(answer, b.chunks)]
    events.append(chunk({}, "stop"))
    if include_usage:
        prompt_tokens, completion_tokens = usage_numbers(payload, answer)
        events.append(b"data: " + orjson.dumps({
            "id": ident, "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_fake", "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_message(payload: dict[str, Any], b: Behaviour) -> dict[str, Any]:
    answer = answer_for(payload, b)
    input_tokens, output_tokens = usage_numbers(payload, answer)
    return {
        "id": _id(payload, "msg"),
        "type": "message",
        "role": "assistant",
        "model": b.model or payload.get("model", "claude-fake"),
        "content": [{"type": "text", "text": answer}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def anthropic_events(payload: dict[str, Any], b: Behaviour) -> list[bytes]:
    message = anthropic_message(payload, b)
    answer = message["content"][0]["text"]
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}
    events = [_sse("message_start", {"type": "message_start", "message": start}),
              _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
              _sse("ping", {"type": "ping"})]
    for piece in _split(answer, b.chunks):
        events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta",
                                                             "text": piece}}))
    events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(_sse("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": "end_turn",
                                                   "stop_sequence": None},
                                         "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


def responses_object(payload: dict[str, Any], b: Behaviour) -> dict[str, Any]:
    answer = answer_for(payload, b)
    input_tokens, output_tokens = usage_numbers(payload, answer)
    return {
        "id": _id(payload, "resp"), "object": "response", "created_at": 1_700_000_000,
        "status": "completed", "model": b.model or payload.get("model", "fake-model"),
        "output": [{"type": "message", "id": "msg_fake", "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}]}],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "total_tokens": input_tokens + output_tokens,
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }


def responses_events(payload: dict[str, Any], b: Behaviour) -> list[bytes]:
    final = responses_object(payload, b)
    answer = final["output"][0]["content"][0]["text"]
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    events = [_sse("response.created", {"type": "response.created", "response": created})]
    for piece in _split(answer, b.chunks):
        events.append(_sse("response.output_text.delta", {
            "type": "response.output_text.delta", "item_id": "msg_fake", "output_index": 0,
            "content_index": 0, "delta": piece}))
    events.append(_sse("response.completed", {"type": "response.completed",
                                              "response": final}))
    return events


def embeddings(payload: dict[str, Any], b: Behaviour) -> dict[str, Any]:
    inputs = payload.get("input", "")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, item in enumerate(items):
        digest = hashlib.sha256(str(item).encode()).digest()
        data.append({"object": "embedding", "index": index,
                     "embedding": [round(byte / 255, 4) for byte in digest[:8]]})
    tokens = sum(len(str(item).split()) for item in items) or 1
    return {"object": "list", "data": data, "model": payload.get("model", "fake-embed"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


async def _send_json(send: Any, status: int, payload: Any, gzip_body: bool = False) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json")]
    if gzip_body:
        body = gzip.compress(body)
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_raw(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
