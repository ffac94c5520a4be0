"""An incremental Server-Sent Events parser for the copy of a stream being forwarded.

Layer: pure core. The proxy forwards upstream bytes as they arrive and feeds the *same*
slices to this parser, which reassembles events on blank lines wherever the slices were
cut. It never hands bytes back to the forwarding path (except in `keep_raw` mode, where
each event's bytes are returned unchanged for the opt-in usage stripping), so a parser
bug cannot alter what the client receives.

Parsing follows the WHATWG event-stream rules: lines end with CRLF, LF or CR (a CR at the
end of a slice waits for the next slice, in case an LF follows); a line starting with `:`
is a comment; `field: value` with one optional space after the colon; `data` lines of
one event are joined with LF; a leading UTF-8 BOM is skipped; an event is dispatched on a
blank line, and an unterminated event at end of stream is not dispatched (`close()` says
whether one was pending, which is how a truncated stream is detected).

Memory is bounded per event: at most `max_event_bytes` of data lines are kept. A bigger
event is counted in `oversized` and skipped (in `keep_raw` mode its bytes are still
returned, as `fragment` events, so forwarding never loses them). Default 8 MiB: a
Responses API `response.completed` event repeats the whole answer, so the bound must
be generous; a chat chunk is a few hundred bytes.
"""

from __future__ import annotations

import re
from typing import NamedTuple

DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_COLON = 0x3A
_CR = 0x0D


class SSEEvent(NamedTuple):
    """One dispatched event (a NamedTuple: one is built per event on the hot path, and a
    tuple is cheaper to build than a frozen dataclass).

    `event` is the `event:` field ("" when absent; the spec's default type is "message");
    `data` the joined `data:` lines as bytes (orjson parses bytes directly, no decode);
    `raw` the exact bytes of the event including its terminating blank line, only in
    `keep_raw` mode. A `fragment` is part of an oversized event (raw bytes only).
    """

    event: str = ""
    data: bytes = b""
    id: str | None = None
    has_data: bool = False
    raw: bytes = b""
    fragment: bool = False


class SSEParser:
    """Feed arbitrary byte slices; get the events they complete."""

    __slots__ = (
        "_any_line", "_buf", "_data", "_event", "_id", "_overflow", "_raw", "_searched",
        "_size", "_skip_line", "_started", "events", "keep_raw", "max_event_bytes",
        "oversized", "partial",
    )

    def __init__(self, *, keep_raw: bool = False,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self.keep_raw = keep_raw
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._searched = 0  # bytes at the start of _buf known to hold no line end
        self._raw = bytearray()
        self._started = False
        self._skip_line = False
        self.events = 0
        self.oversized = 0
        self.partial = False
        self._reset_event()

    def _reset_event(self) -> None:
        self._event = ""
        self._data: list[bytes] = []
        self._id: str | None = None
        self._size = 0
        self._any_line = False
        self._overflow = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if not chunk:
            return out
        buf = self._buf
        buf += chunk
        if not self._started and not self._skip_bom():
            return out
        self._scan(out, final=False)
        if len(buf) + self._size > self.max_event_bytes:
            self._start_overflow(out)
        elif self._overflow and self.keep_raw and self._raw:
            out.append(SSEEvent(raw=bytes(self._raw), fragment=True))
            self._raw.clear()
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: finish a line cut after a CR and return what that completes.

        In `keep_raw` mode, bytes never dispatched come back as a final fragment so the
        forwarding side can pass them on. `partial` tells whether an event was left
        unterminated (a truncated stream).
        """
        out: list[SSEEvent] = []
        self._started = True
        self._scan(out, final=True)
        self.partial = bool(self._any_line or self._buf or self._overflow or self._skip_line)
        tail = bytes(self._raw) + bytes(self._buf)
        if self.keep_raw and tail:
            out.append(SSEEvent(raw=tail, fragment=True))
        self._buf.clear()
        self._searched = 0
        self._raw.clear()
        self._reset_event()
        return out

    def _skip_bom(self) -> bool:
        """Drop a leading BOM (kept in raw); False while the first bytes are undecided."""
        head = bytes(self._buf[:3])
        if len(head) < 3 and _BOM.startswith(head):
            return False
        self._started = True
        if head == _BOM:
            if self.keep_raw:
                self._raw += _BOM
            del self._buf[:3]
        return True

    def _scan(self, out: list[SSEEvent], *, final: bool) -> None:
        """Process every complete line in the buffer. The search resumes where the last
        one stopped, so a long line arriving in many slices is scanned once."""
        buf = self._buf
        pos = 0
        if buf.find(b"\r", self._searched) < 0:
            newline = buf.find(b"\n", self._searched)
            while newline >= 0:
                self._line(bytes(buf[pos:newline]), b"\n", out)
                pos = newline + 1
                newline = buf.find(b"\n", pos)
        else:
            pos = self._scan_any(buf, out, final=final)
        if pos:
            del buf[:pos]
        self._searched = len(buf) - 1 if buf[-1:] == b"\r" else len(buf)

    def _scan_any(self, buf: bytearray, out: list[SSEEvent], *, final: bool) -> int:
        end_of_buf = len(buf)
        pos = 0
        match = _EOL.search(buf, self._searched)
        while match is not None:
            start, end = match.span()
            if not final and end == end_of_buf and buf[start] == _CR and end - start == 1:
                break  # a CR at the end of the slice may be the first half of CRLF
            self._line(bytes(buf[pos:start]), bytes(buf[start:end]), out)
            pos = end
            match = _EOL.search(buf, pos)
        return pos

    def _line(self, line: bytes, eol: bytes, out: list[SSEEvent]) -> None:
        if self.keep_raw:
            self._raw += line
            self._raw += eol
        if self._skip_line:
            # The start of this line was dropped by an overflow: it is not blank.
            self._skip_line = False
            return
        if not line:
            self._dispatch(out)
            return
        self._any_line = True
        if self._overflow or line[0] == _COLON:
            return
        colon = line.find(b":")
        if colon < 0:
            self._field(line, b"")
        elif line[colon + 1:colon + 2] == b" ":
            self._field(line[:colon], line[colon + 2:])
        else:
            self._field(line[:colon], line[colon + 1:])

    def _field(self, name: bytes, value: bytes) -> None:
        if name == b"data":
            self._size += len(value) + 1
            if self._size > self.max_event_bytes:
                self._drop_event()
            else:
                self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")

    def _dispatch(self, out: list[SSEEvent]) -> None:
        raw = bytes(self._raw) if self.keep_raw else b""
        self._raw.clear()
        if self._overflow:
            self.oversized += 1
            if raw:
                out.append(SSEEvent(raw=raw, fragment=True))
        elif self._any_line or raw:
            self.events += 1
            lines = self._data
            data = lines[0] if len(lines) == 1 else b"\n".join(lines)
            out.append(SSEEvent(self._event, data, self._id, bool(lines), raw, False))
        self._reset_event()

    def _start_overflow(self, out: list[SSEEvent]) -> None:
        """The current event is too big: drop what was kept and skip to its end."""
        if self.keep_raw:
            self._raw += self._buf
            out.append(SSEEvent(raw=bytes(self._raw), fragment=True))
            self._raw.clear()
        self._skip_line = self._skip_line or bool(self._buf)
        self._buf.clear()
        self._searched = 0
        self._drop_event()

    def _drop_event(self) -> None:
        self._data = []
        self._size = 0
        self._overflow = True
        self._any_line = True


def iter_events(body: bytes, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                ) -> tuple[list[SSEEvent], bool]:
    """Parse a complete (teed) stream; return its events and whether it ended mid-event."""
    parser = SSEParser(max_event_bytes=max_event_bytes)
    events = parser.feed(body)
    events += parser.close()
    return events, parser.partial
