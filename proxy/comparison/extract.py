"""One entry point for the comparison's input: a teed response body, JSON or SSE, in
any content coding the proxy understands, to an `Answer`.

Layer: pure core. `answer_from_document` is the lenient entry for an answer a person
wrote or saved (`llm-shadow compare`, the calibration set): it detects the shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from proxy.apis import Api
from proxy.comparison.answer import Answer, answer_from_json, build_answer
from proxy.comparison.stream import answer_from_stream
from proxy.usage.meter import decode_body

PREVIEW_BYTES = 4096


def looks_like_sse(body: bytes, content_type: str | None) -> bool:
    """The content type decides; without one, the first bytes do."""
    if content_type:
        return "text/event-stream" in content_type.lower()
    head = body.lstrip()[:16]
    return head.startswith((b"data:", b"event:", b":", b"id:"))


def extract_answer(api: Api | None, body: bytes, *, content_type: str | None = None,
                   content_encoding: str | None = None, truncated: bool = False) -> Answer:
    """The answer in a complete (teed) response body.

    `truncated` says the tee stopped copying. A body that cannot be decoded or parsed
    gives an Answer with `error` set (and the start of the body as text), which compares
    as divergent from any real answer.
    """
    decoded = decode_body(body, content_encoding)
    if decoded is None:
        return Answer(api, error="undecodable_body", truncated=truncated)
    if looks_like_sse(decoded, content_type):
        return answer_from_stream(api, decoded, truncated=truncated)
    try:
        payload = orjson.loads(decoded)
    except orjson.JSONDecodeError:
        reason = "truncated_body" if truncated else "invalid_json"
        text = decoded[:PREVIEW_BYTES].decode("utf-8", "replace")
        return Answer(api, text=text, error=reason, truncated=truncated)
    return answer_from_json(api, payload, truncated=truncated)


# The shapes `answer_from_document` recognises, for an answer written by hand or saved
# from a log: the three wire formats (whole bodies or SSE streams), an OpenAI
# embeddings list, a bare chat message, any other JSON (a JSON answer), or text.
SHAPES = ("openai_chat", "openai_responses", "anthropic_messages", "openai_embeddings",
          "chat_message", "json", "text")


def detect_api(payload: Any) -> Api | None:
    """The wire format of a parsed response body, or None when it is none of them."""
    if not isinstance(payload, Mapping):
        return None
    if isinstance(payload.get("choices"), list):
        return "openai_chat"
    if payload.get("type") == "message" and isinstance(payload.get("content"), list):
        return "anthropic_messages"
    if payload.get("object") == "response" or (
            isinstance(payload.get("output"), list) and "status" in payload):
        return "openai_responses"
    if payload.get("object") == "list" and isinstance(payload.get("data"), list) and all(
            isinstance(d, Mapping) and "embedding" in d for d in payload["data"]):
        return "openai_embeddings"
    return None


def _stream_api(body: bytes) -> Api | None:
    if b"chat.completion.chunk" in body:
        return "openai_chat"
    if b"message_start" in body or b"content_block_delta" in body:
        return "anthropic_messages"
    if b'"response.' in body or b"event: response." in body:
        return "openai_responses"
    return None


def answer_from_document(document: bytes | str | Any) -> tuple[str, Answer]:
    """(shape, answer) of a response body, a parsed JSON value, or plain text; the shape
    is detected (see `SHAPES`). Raises ValueError for bytes that are not UTF-8."""
    if isinstance(document, bytes):
        if looks_like_sse(document, None):
            api = _stream_api(document)
            return (api or "text"), answer_from_stream(api, document)
        try:
            text = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
        try:
            return answer_from_document(orjson.loads(text)) if text.strip()[:1] in (
                "{", "[") else ("text", build_answer(None, text=text))
        except orjson.JSONDecodeError:
            return "text", build_answer(None, text=text)
    if isinstance(document, str):
        return "text", build_answer(None, text=document)
    api = detect_api(document)
    if api is not None:
        return api, answer_from_json(api, document)
    if isinstance(document, Mapping) and document.get("role") == "assistant":
        body = {"choices": [{"index": 0, "message": dict(document),
                             "finish_reason": document.get("finish_reason")}]}
        return "chat_message", answer_from_json("openai_chat", body)
    return "json", build_answer(None, text=orjson.dumps(document).decode())
