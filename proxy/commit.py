"""When a diverted answer may be committed to the client: what must have been read of the
orchestrator's answer before its first byte goes out.

Layer: pure core (orjson and zlib only). The divert (`proxy.divert`) reads the answer up
to the point these rules name, within its time budget; any failure until then falls
back to legacy, because nothing has reached the client yet:

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
or None. Compressed bodies (`gzip`, `deflate`) are inflated for the check, bounded by the
same limit; other encodings are served unchecked (they cannot be read here).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import orjson

TOO_LARGE = "too_large"
INVALID_JSON = "invalid_json"


def problem(body: bytes, headers: Sequence[tuple[bytes, bytes]], *, limit: int,
            llm_api: bool) -> str | None:
    """Why a whole non-streamed answer may not be served, or None when it may."""
    if len(body) > limit:
        return TOO_LARGE
    if not _json_expected(_header(headers, b"content-type"), llm_api):
        return None
    wbits = _wbits(_header(headers, b"content-encoding"))
    if wbits is None:  # an encoding this module cannot read: served unchecked
        return None
    plain = body
    if wbits:
        inflater = zlib.decompressobj(wbits)
        try:
            plain = inflater.decompress(body, limit + 1)
        except zlib.error:
            return INVALID_JSON
        if len(plain) > limit:
            return TOO_LARGE
        if not inflater.eof:  # the compressed stream was cut short
            return INVALID_JSON
    try:
        orjson.loads(plain)
    except orjson.JSONDecodeError:
        return INVALID_JSON
    return None


def _json_expected(content_type: bytes | None, llm_api: bool) -> bool:
    if content_type is None:
        return llm_api
    return b"json" in content_type.lower()


def _wbits(encoding: bytes | None) -> int | None:
    """zlib's window bits for a content coding; 0 for none, None for one it cannot read."""
    coding = (encoding or b"").strip().lower()
    if coding in (b"", b"identity"):
        return 0
    if coding in (b"gzip", b"x-gzip"):
        return 16 + zlib.MAX_WBITS
    if coding == b"deflate":
        return zlib.MAX_WBITS
    return None


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
