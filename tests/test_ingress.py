"""Ingress hygiene as a table: which requests an intermediary refuses before anything is
forwarded (with the status, error code and whether the connection is closed), which it
lets through, and how the request id is chosen."""

from __future__ import annotations

import re

import pytest

from proxy.errors import RequestRejected
from proxy.ingress import check_request, request_id

LIMIT = 1024
RID = b"x-request-id"
POST = "POST"
Headers = list[tuple[bytes, bytes]]


def _size(headers: Headers) -> int:
    return sum(len(name) + len(value) + 4 for name, value in headers)


# (method, headers, status, code, close_connection)
REFUSED: dict[str, tuple[str, Headers, int, str, bool]] = {
    "CONNECT tunnel": ("CONNECT", [], 405, "method_not_allowed", False),
    "TRACE": ("TRACE", [], 405, "method_not_allowed", False),
    "both framings": (POST, [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
                      400, "bad_framing", True),
    "conflicting lengths": (POST, [(b"content-length", b"5"), (b"content-length", b"6")],
                            400, "bad_framing", True),
    "length not a number": (POST, [(b"content-length", b"5a")], 400, "bad_framing", True),
    "negative length": (POST, [(b"content-length", b"-1")], 400, "bad_framing", True),
    "encoding other than chunked": (POST, [(b"transfer-encoding", b"gzip, chunked")],
                                    400, "bad_framing", True),
    "chunked twice": (POST, [(b"transfer-encoding", b"chunked"),
                             (b"transfer-encoding", b"chunked")], 400, "bad_framing", True),
    "websocket upgrade": ("GET", [(b"upgrade", b"WebSocket")], 400, "upgrade_not_supported",
                          False),
    "headers one byte too large": (POST, [(b"x-pad", b"a" * (LIMIT - 8))], 431,
                                   "headers_too_large", True),
}

ACCEPTED: dict[str, tuple[str, Headers]] = {
    "no body": ("GET", []),
    "a length": (POST, [(b"content-length", b"12")]),
    "the same length twice": (POST, [(b"content-length", b"12"), (b"content-length", b"12")]),
    "chunked, any case": (POST, [(b"transfer-encoding", b"Chunked")]),
    "h2c upgrade is ignored, not refused": (POST, [(b"upgrade", b"h2c")]),
    "headers exactly at the limit": (POST, [(b"x-pad", b"a" * (LIMIT - 9))]),
    "OPTIONS": ("OPTIONS", []),
}


@pytest.mark.parametrize(("method", "headers", "status", "code", "close"),
                         list(REFUSED.values()), ids=list(REFUSED))
def test_refused(method: str, headers: Headers, status: int, code: str, close: bool) -> None:
    with pytest.raises(RequestRejected) as caught:
        check_request(method, headers, LIMIT)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.close_connection is close


@pytest.mark.parametrize(("method", "headers"), list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_accepted(method: str, headers: Headers) -> None:
    check_request(method, headers, LIMIT)


def test_the_header_limit_counts_names_values_and_separators() -> None:
    at_limit = [(b"x-pad", b"a" * (LIMIT - 9))]
    assert _size(at_limit) == LIMIT
    assert _size(REFUSED["headers one byte too large"][1]) == LIMIT + 1


# (headers, the id kept, or None when a new one must be made)
IDS: dict[str, tuple[Headers, str | None]] = {
    "a sane id is kept": ([(RID, b"abc-123_x.y:z")], "abc-123_x.y:z"),
    "no header": ([], None),
    "another header's value is not used": ([(b"x-other", b"abc")], None),
    "empty": ([(RID, b"")], None),
    "spaces": ([(RID, b"a b")], None),
    "a newline": ([(RID, b"a\nb")], None),
    "too long": ([(RID, b"a" * 129)], None),
    "128 characters is fine": ([(RID, b"a" * 128)], "a" * 128),
    "non-ASCII": ([(RID, "é".encode("latin-1"))], None),
    "only the first header counts": ([(RID, b"bad id"), (RID, b"good")], None),
    "the first of two sane ones": ([(RID, b"one"), (RID, b"two")], "one"),
}


@pytest.mark.parametrize(("headers", "kept"), list(IDS.values()), ids=list(IDS))
def test_request_id(headers: Headers, kept: str | None) -> None:
    made = request_id(headers, RID)
    if kept is not None:
        assert made == kept
    else:
        assert all(made != value.decode("latin-1") for _, value in headers)
        # A made id is itself one the proxy would keep if a client sent it back.
        assert re.fullmatch(r"[0-9a-f]{22}", made)
        assert request_id([(RID, made.encode())], RID) == made


def test_made_ids_are_unique() -> None:
    made = {request_id([], RID) for _ in range(1000)}
    assert len(made) == 1000
