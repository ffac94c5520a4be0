"""One entry point for the comparison's input: a teed response body, JSON or SSE, in
any content coding the proxy understands, to an `Answer`.

Layer: pure core.
"""

from __future__ import annotations

import orjson

from proxy.apis import Api
from proxy.comparison.answer import Answer, answer_from_json
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
