"""When a diverted answer may be committed to the client: what must have been read of the
orchestrator's answer before its first byte goes out.

Layer: pure core (orjson, and the usage meter's decoding). The divert (`proxy.divert`)
reads the answer up to the point these rules name, within its time budget; any failure
until then falls back to legacy, because nothing has reached the client yet:

- a non-streamed answer is read whole, up to the route's body limit, and must be JSON
  when it says it is (or when the path is an LLM API, whose answers are JSON). A
  non-streamed answer is useless to the client until it is whole, so nothing is gained
  by relaying it early, and an answer cut short (headers, then part of the body, then a
  closed connection; a reset; a stall) would be lost instead of falling back. A body
  sent without a length and closed early ends without any transport error: only the
  JSON check sees that it is cut;
- a stream is committed once its first body part arrived; after that a failure aborts
  the client's stream (legacy is never spliced onto a partial answer).

`problem` says why a whole, non-streamed answer may not be served (a fallback reason),
or None. Compressed bodies (`gzip`, `deflate` zlib-wrapped or raw, stacked) are inflated
for the check by `proxy.usage.meter.decode_content`, bounded by the same limit; other
encodings are served unchecked (they cannot be read here).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from proxy.usage.meter import Undecodable, decode_content

TOO_LARGE = "too_large"
INVALID_JSON = "invalid_json"


def problem(body: bytes, headers: Sequence[tuple[bytes, bytes]], *, limit: int,
            llm_api: bool) -> str | None:
    """Why a whole non-streamed answer may not be served, or None when it may."""
    if len(body) > limit:
        return TOO_LARGE
    if not _json_expected(_header(headers, b"content-type"), llm_api):
        return None
    encoding = _header(headers, b"content-encoding")
    try:
        plain = decode_content(body, encoding.decode("latin-1") if encoding else None,
                               limit=limit)
    except Undecodable as exc:
        if exc.reason == "unknown_coding":  # an encoding this module cannot read
            return None
        return TOO_LARGE if exc.reason == "too_large" else INVALID_JSON
    try:
        orjson.loads(plain)
    except orjson.JSONDecodeError:
        return INVALID_JSON
    return None


def _json_expected(content_type: bytes | None, llm_api: bool) -> bool:
    if content_type is None:
        return llm_api
    return b"json" in content_type.lower()


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
