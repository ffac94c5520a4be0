"""Header hygiene for a transparent intermediary (RFC 9110 §7.6.1), on raw ASGI headers.

Layer: pure core. Headers stay a list of `(name, value)` byte pairs, lower-case names, in
arrival order, so repeated fields keep their order (RFC 9110 §5.2) and nothing is
re-encoded on the way through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RawHeaders = list[tuple[bytes, bytes]]

# Connection-specific fields (RFC 9110 §7.6.1), plus the proxy-authentication pair, which
# is addressed to a proxy and never to the next hop.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"http2-settings",
    }
)

# Never sent to a third-party API: they would leak the pod's internal topology.
FORWARDING = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-host",
                        b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-prefix",
                        b"x-real-ip", b"via"})

# The proxy's own marker headers; only the proxy may set them, so client input loses them.
MARKER_PREFIX = b"x-llm-shadow-"
REQUEST_ID_MARKER = MARKER_PREFIX + b"request-id"

def connection_options(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Field names listed in `Connection`, which are connection-specific too."""
    options: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            options.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return options


def upstream_request_headers(headers: Sequence[tuple[bytes, bytes]]) -> RawHeaders:
    """Client headers as they go to a configured upstream.

    `Host` is dropped so the HTTP client sets it from the configured upstream URL; the
    framing headers are rebuilt by the client from the body it actually sends.
    """
    drop = connection_options(headers)
    out: RawHeaders = []
    for name, value in headers:
        if (
            name in HOP_BY_HOP
            or name in drop
            or name in FORWARDING
            or name == b"host"
            or name.startswith(MARKER_PREFIX)
        ):
            continue
        out.append((name, value))
    return out


def client_response_headers(headers: Sequence[tuple[bytes, bytes]]) -> RawHeaders:
    """Upstream response headers as they go back to the client (then `tagged`).

    `Content-Length` and `Content-Encoding` are kept: the body is forwarded as the raw
    bytes the upstream sent, so they stay true. The server re-frames the response itself
    (chunked when there is no length).
    """
    drop = connection_options(headers)
    return [
        (name, value)
        for name, value in headers
        if name not in HOP_BY_HOP and name not in drop
    ]


def tagged(headers: RawHeaders, request_id: str, request_id_header: bytes) -> RawHeaders:
    """Every response the proxy relays or produces names the request id its trace and the
    report use: always in `x-llm-shadow-request-id`, and in the configured request id
    header unless the upstream already sent one (OpenAI's `x-request-id` is the
    provider's own id, which SDKs show and support asks for: it is never replaced)."""
    value = request_id.encode("latin-1")
    headers.append((REQUEST_ID_MARKER, value))
    if get(headers, request_id_header) is None:
        headers.append((request_id_header, value))
    return headers


def get(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def get_all(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]
