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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.usage.sse import SSEEvent, SSEParser


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


@dataclass(frozen=True, slots=True)
class UsageInjection:
    """The body to send upstream; `injected` means the client stream must go through
    `client_event_bytes` so the client sees what it asked for."""

    body: bytes
    injected: bool


_OPEN_BRACE = re.compile(rb"^\s*\{")


def inject_include_usage(body: bytes) -> UsageInjection:
    """Add `stream_options.include_usage=true` to a streaming chat request that lacks it.

    When `stream_options` is absent the key is spliced in after the opening brace, so
    every other byte of the client's body is unchanged; otherwise the body is
    re-serialised. Only for routes whose upstream accepts the option (some compatible
    providers reject it), which is why it is opt-in per route.
    """
    payload = _loads(body)
    if not isinstance(payload, dict) or payload.get("stream") is not True:
        return UsageInjection(body, False)
    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return UsageInjection(body, False)
    if options is None and "stream_options" not in payload:
        match = _OPEN_BRACE.match(body)
        if match:
            spliced = (body[:match.end()] + b'"stream_options":{"include_usage":true},'
                       + body[match.end():])
            return UsageInjection(spliced, True)
    if options is not None and not isinstance(options, dict):
        return UsageInjection(body, False)
    payload["stream_options"] = {**(options or {}), "include_usage": True}
    return UsageInjection(orjson.dumps(payload), True)


# `"usage":null` as the last member (OpenAI's layout), or followed by another member.
_NULL_USAGE = (re.compile(rb',\s*"usage"\s*:\s*null(?=\s*\}\s*$)'),
               re.compile(rb'"usage"\s*:\s*null\s*,\s*'))


def client_event_bytes(event: SSEEvent) -> bytes | None:
    """The bytes the client gets for one upstream event when usage was injected: the
    extra usage chunk (`choices: []`) is dropped (None), a `"usage": null` member is
    removed from other chunks, everything else passes unchanged. Needs a parser in
    `keep_raw` mode."""
    if event.fragment or not event.has_data or b'"usage"' not in event.data:
        return event.raw
    payload = _loads(event.data)
    if not isinstance(payload, dict) or "usage" not in payload:
        return event.raw
    usage = payload.pop("usage")
    if usage is not None and payload.get("choices") == []:
        return None
    if usage is None and b"\n" not in event.data:
        for pattern in _NULL_USAGE:
            stripped = pattern.sub(b"", event.data, count=1)
            if stripped != event.data and _loads(stripped) == payload:
                return event.raw.replace(event.data, stripped, 1)
    return _reserialised(event, payload)


def _reserialised(event: SSEEvent, payload: Mapping[str, Any]) -> bytes:
    lines = []
    if event.event:
        lines.append(b"event: " + event.event.encode())
    if event.id is not None:
        lines.append(b"id: " + event.id.encode())
    lines.append(b"data: " + orjson.dumps(payload))
    return b"\n".join(lines) + b"\n\n"


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
