"""What a non-streamed diverted answer must be before it may be sent: whole, within the
route's limit, and JSON when it says so (compressed bodies, zlib-wrapped or raw deflate
and stacked codings too, inflated for the check)."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from proxy.commit import INVALID_JSON, TOO_LARGE, problem

ANSWER = orjson.dumps({"choices": [{"message": {"content": "x" * 200}}]})
JSON = [(b"content-type", b"application/json")]


def gz(body: bytes) -> bytes:
    return gzip.compress(body)


def raw_deflate(body: bytes) -> bytes:
    """`deflate` as some servers send it: without the zlib wrapper."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


def encoded(coding: bytes) -> list[tuple[bytes, bytes]]:
    return [*JSON, (b"content-encoding", coding)]


@pytest.mark.parametrize("body,headers,limit,llm_api,expected", [
    (ANSWER, JSON, 10_000, True, None),
    (ANSWER[: len(ANSWER) // 2], JSON, 10_000, True, INVALID_JSON),
    (ANSWER, JSON, 100, True, TOO_LARGE),
    (b"", JSON, 10_000, True, INVALID_JSON),
    (b"not json at all", [(b"content-type", b"text/plain")], 10_000, True, None),
    (ANSWER[:30], [], 10_000, True, INVALID_JSON),  # no content type: an LLM API is JSON
    (b"binary", [], 10_000, False, None),  # not an LLM API, no content type: unchecked
    (ANSWER, [(b"content-type", b"application/vnd.api+json")], 10_000, True, None),
    (gz(ANSWER), encoded(b"gzip"), 10_000, True, None),
    (gz(ANSWER)[:40], encoded(b"gzip"), 10_000, True, INVALID_JSON),
    (b"\x00garbage", encoded(b"gzip"), 10_000, True, INVALID_JSON),
    (gz(ANSWER), encoded(b"gzip"), 100, True, TOO_LARGE),
    (zlib.compress(ANSWER), encoded(b"deflate"), 10_000, True, None),
    (raw_deflate(ANSWER), encoded(b"deflate"), 10_000, True, None),
    (raw_deflate(ANSWER)[:40], encoded(b"deflate"), 10_000, True, INVALID_JSON),
    (gz(zlib.compress(ANSWER)), encoded(b"deflate, gzip"), 10_000, True, None),
    (b"\x8b\x00br", encoded(b"br"), 10_000, True, None),  # unreadable
], ids=["whole", "half", "over the limit", "empty", "text", "cut, no type", "not an API",
        "+json", "gzip", "gzip cut", "gzip corrupt", "gzip inflates past the limit",
        "deflate", "raw deflate", "raw deflate cut", "stacked", "brotli unchecked"])
def test_problem(body: bytes, headers: list[tuple[bytes, bytes]], limit: int,
                 llm_api: bool, expected: str | None) -> None:
    assert problem(body, headers, limit=limit, llm_api=llm_api) == expected
