"""Opt-in: ask OpenAI chat streams for their usage, and keep it from the client.

Layer: pure core. A streamed chat completion reports tokens only when the client asked
for `stream_options.include_usage`; without usage, cost is an estimate. For the routes
listed in `comparison.inject_stream_usage_routes` the proxy adds the option upstream and
then removes from the client's stream what the client did not ask for (the extra usage
chunk and the `"usage": null` members), so the client sees the stream it requested while
the proxy's copy carries the real token counts. Off by default: it alters the legacy
request, and some OpenAI-compatible providers reject the option.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.usage.meter import client_event_bytes, inject_include_usage
from proxy.usage.sse import SSEParser


class UsageStripper:
    """Rewrites the upstream's SSE bytes into what the client asked for."""

    def __init__(self) -> None:
        self.parser = SSEParser(keep_raw=True)
        self.active = True

    def start(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The client's response headers. Only an uncompressed event stream is
        rewritten (an error body, or bytes this parser cannot read, pass through as
        they are), and a rewritten stream loses any `Content-Length`: it is shorter."""
        fields = {name.lower(): value for name, value in headers}
        encoding = fields.get(b"content-encoding", b"identity").strip().lower()
        self.active = (fields.get(b"content-type", b"").startswith(b"text/event-stream")
                       and encoding in (b"", b"identity"))
        if not self.active:
            return headers
        return [(name, value) for name, value in headers if name.lower() != b"content-length"]

    def feed(self, chunk: bytes) -> bytes:
        if not self.active:
            return chunk
        return self._client_bytes(self.parser.feed(chunk))

    def close(self) -> bytes:
        if not self.active:
            return b""
        return self._client_bytes(self.parser.close())

    @staticmethod
    def _client_bytes(events: Sequence[object]) -> bytes:
        parts = [client_event_bytes(event) for event in events]  # type: ignore[arg-type]
        return b"".join(part for part in parts if part)


def prepare(body: bytes, route: str, routes: Sequence[str]) -> tuple[bytes, UsageStripper | None]:
    """The body to send upstream, and the stripper its stream needs, if any."""
    if route not in routes:
        return body, None
    injection = inject_include_usage(body)
    if not injection.injected:
        return body, None
    return injection.body, UsageStripper()
