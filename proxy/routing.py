"""The route table: which configured upstream a request path belongs to.

Layer: pure core. This is where "not an open proxy" is enforced: the upstream URL is
built only from a configured base URL plus the validated remainder of the raw path.
`Host`, absolute-form targets and anything else the client controls never choose the
destination, and paths that could be read differently by another parser (dot segments,
encoded slashes or dots, empty segments, backslashes, control characters) are refused
rather than normalised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from proxy.apis import Api, api_for_path
from proxy.config.proxy import Route
from proxy.errors import RequestRejected, not_found

# Percent-encoded '.', '/', '\' and NUL would let a later decoder see a different path.
_ENCODED_TRICK = re.compile(rb"%(2e|2f|5c|00)", re.IGNORECASE)
_FORBIDDEN_BYTES = re.compile(rb"[\x00-\x20\x7f\\#]")


@dataclass(frozen=True, slots=True)
class Upstream:
    """A route's upstream, parsed once when the table is built: `netloc` as configured
    (for error messages), `host` without port or IPv6 brackets and the effective `port`
    (for spans)."""

    netloc: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.netloc, parts.hostname or "", port)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one request goes: its route, the upstream path, the full upstream URL, and
    what the rest of the proxy needs to know about it, resolved once here: the API the
    path speaks and the upstream's host and port."""

    route: Route
    path: str
    url: str
    api: Api | None
    upstream: Upstream

    @property
    def prefix(self) -> str:
        return self.route.prefix

    @property
    def provider(self) -> str:
        return self.route.provider

    @property
    def query(self) -> bytes:
        return self.url.partition("?")[2].encode("latin-1")


class RouteTable:
    def __init__(self, routes: Sequence[Route]):
        # Longest prefix first, so '/openai-eu' is not captured by '/openai'.
        self._routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)
        self._upstreams = {route.prefix: Upstream.of(route.upstream) for route in routes}

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def resolve(self, raw_path: bytes, query_string: bytes) -> Destination:
        """Map a raw request target to its upstream, or raise `RequestRejected`."""
        check_path(raw_path)
        path = raw_path.decode("ascii")
        for route in self._routes:
            prefix = route.prefix
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix):] or "/"
                url = route.upstream + rest
                if query_string:
                    url += "?" + query_string.decode("latin-1")
                return Destination(route, rest, url, api_for_path(rest, route.provider),
                                   self._upstreams[prefix])
        raise not_found(f"no route for path {_printable(path)}")


def check_path(raw_path: bytes) -> None:
    if not raw_path.startswith(b"/"):
        raise RequestRejected("the request target must be a path (absolute-form is refused)")
    if b"//" in raw_path:
        raise RequestRejected("empty path segments are refused")
    if _FORBIDDEN_BYTES.search(raw_path) or _ENCODED_TRICK.search(raw_path):
        raise RequestRejected("the path contains a forbidden or encoded character")
    try:
        raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise RequestRejected("the path must be ASCII (percent-encode it)") from None
    for segment in raw_path.split(b"/"):
        if segment in (b".", b".."):
            raise RequestRejected("dot segments are refused")


def _printable(path: str) -> str:
    return path if len(path) <= 80 else path[:77] + "..."
