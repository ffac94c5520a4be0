"""Ingress hygiene: what a request must look like before anything is forwarded.

Layer: pure core. The HTTP parser (h11) already refuses most malformed framing; these
checks restate the rules that matter for smuggling (RFC 9112 §6.3) so they hold whatever
parser runs in front, and they decide the request id used for sticky buckets and traces.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence

from proxy.errors import RequestRejected

_TUNNEL_METHODS = frozenset({"CONNECT", "TRACE"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def check_request(method: str, headers: Sequence[tuple[bytes, bytes]],
                  max_header_bytes: int) -> None:
    """Refuse requests an intermediary must not forward."""
    if sum(len(name) + len(value) + 4 for name, value in headers) > max_header_bytes:
        raise RequestRejected("request header fields are too large", status=431,
                              code="headers_too_large", close_connection=True)
    if method in _TUNNEL_METHODS:
        raise RequestRejected(f"method {method} is not supported by this proxy", status=405,
                              code="method_not_allowed")
    lengths = [value for name, value in headers if name == b"content-length"]
    encodings = [value for name, value in headers if name == b"transfer-encoding"]
    if encodings and lengths:
        raise framing_error("both Transfer-Encoding and Content-Length are present")
    if len(lengths) > 1 and len(set(lengths)) > 1:
        raise framing_error("conflicting Content-Length headers")
    if lengths and not lengths[0].strip().isdigit():
        raise framing_error("invalid Content-Length")
    if encodings and b",".join(encodings).strip().lower() != b"chunked":
        raise framing_error("only Transfer-Encoding: chunked is accepted")
    for name, value in headers:
        if name == b"upgrade" and b"websocket" in value.lower():
            raise RequestRejected("protocol upgrades are not supported by this proxy",
                                  code="upgrade_not_supported")


def framing_error(message: str) -> RequestRejected:
    return RequestRejected(message, code="bad_framing", close_connection=True)


# A random per-process prefix and a counter: unique across replicas and restarts, and
# much cheaper than uuid4 on the request path.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def request_id(headers: Sequence[tuple[bytes, bytes]], header_name: bytes) -> str:
    """The client's request id when it sent a sane one, else a new unique one."""
    for name, value in headers:
        if name == header_name:
            text = value.decode("latin-1")
            if _SAFE_ID.match(text):
                return text
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"
