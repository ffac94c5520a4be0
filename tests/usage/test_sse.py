"""The incremental SSE parser: WHATWG line and field rules, any slicing, exact raw bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.usage.sse import SSEEvent, SSEParser, iter_events


def parse(body: bytes, **kwargs: object) -> list[SSEEvent]:
    parser = SSEParser(**kwargs)  # type: ignore[arg-type]
    events = parser.feed(body)
    return events + parser.close()


def fed_in(body: bytes, cuts: list[int], **kwargs: object) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser(**kwargs)  # type: ignore[arg-type]
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(body[last:cut])
        last = cut
    events += parser.feed(body[last:])
    events += parser.close()
    return events, parser


@pytest.mark.parametrize(("body", "expected"), [
    (b"data: hello\n\n", [("", b"hello")]),
    (b"data:hello\n\n", [("", b"hello")]),
    (b"data:  two spaces\n\n", [("", b" two spaces")]),
    (b"data: a\ndata: b\n\n", [("", b"a\nb")]),
    (b"event: message_start\ndata: {}\n\n", [("message_start", b"{}")]),
    (b"data: crlf\r\n\r\n", [("", b"crlf")]),
    (b"data: cr\r\r", [("", b"cr")]),
    (b"data: mixed\r\ndata: lines\n\r\n", [("", b"mixed\nlines")]),
    (b": comment\ndata: x\n\n", [("", b"x")]),
    (b"\xef\xbb\xbfdata: bom\n\n", [("", b"bom")]),
    (b"data\n\n", [("", b"")]),
    (b"data: [DONE]\n\n", [("", b"[DONE]")]),
    (b"data: 1\n\ndata: 2\n\n", [("", b"1"), ("", b"2")]),
])
def test_fields_and_lines(body: bytes, expected: list[tuple[str, bytes]]) -> None:
    events = [e for e in parse(body) if e.has_data]
    assert [(e.event, e.data) for e in events] == expected


def test_id_field_and_unknown_fields() -> None:
    [event] = parse(b"id: 7\nretry: 10\nfoo: bar\ndata: x\n\n")
    assert event.id == "7"
    assert event.data == b"x"


def test_event_without_data_has_no_data() -> None:
    [event] = parse(b"event: ping\n\n")
    assert event.event == "ping"
    assert not event.has_data


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert parse(b"\n\n\n") == []


def test_unterminated_event_is_not_dispatched_and_marks_partial() -> None:
    events, partial = iter_events(b"data: 1\n\ndata: 2\n")
    assert [e.data for e in events] == [b"1"]
    assert partial


def test_complete_stream_is_not_partial() -> None:
    _, partial = iter_events(b"data: 1\n\n")
    assert not partial


def test_cr_at_end_of_slice_waits_for_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # The LF completes "\r\n" (one line end), so this is not yet a blank line.
    assert parser.feed(b"\ndata: b\r\n") == []
    [event] = parser.feed(b"\r\n")
    assert event.data == b"a\nb"


def test_cr_at_end_of_stream_ends_the_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\r") == []
    [event] = parser.close()
    assert event.data == b"a"
    assert not parser.partial


def test_bom_split_across_slices() -> None:
    events, _ = fed_in(b"\xef\xbb\xbfdata: x\n\n", [1, 2])
    assert [e.data for e in events] == [b"x"]


def test_oversized_event_is_skipped_and_counted() -> None:
    big = b"data: " + b"x" * 500 + b"\n\n"
    events, parser = fed_in(big + b"data: after\n\n", [10, 100, 300], max_event_bytes=64)
    assert [e.data for e in events] == [b"after"]
    assert parser.oversized == 1


def test_oversized_by_many_lines() -> None:
    body = b"".join(b"data: 0123456789\n" for _ in range(20)) + b"\ndata: ok\n\n"
    events, parser = fed_in(body, [], max_event_bytes=64)
    assert [e.data for e in events] == [b"ok"]
    assert parser.oversized == 1


def test_oversized_event_still_returns_raw_bytes() -> None:
    body = b"data: " + b"y" * 300 + b"\n\ndata: ok\n\n"
    events, _ = fed_in(body, [7, 50, 200], keep_raw=True, max_event_bytes=64)
    assert b"".join(e.raw for e in events) == body
    assert any(e.fragment for e in events)
    assert [e.data for e in events if e.has_data] == [b"ok"]


def test_feed_does_not_touch_the_caller_buffer() -> None:
    chunk = bytearray(b"data: x\n\n")
    SSEParser().feed(bytes(chunk))
    assert chunk == bytearray(b"data: x\n\n")


# --- properties: any slicing gives the same events; raw bytes add up exactly -----------

_line = st.sampled_from([
    b"data: {\"a\": 1}", b"data:", b"data: x", b"event: message_delta", b": keep-alive",
    b"id: 3", b"data: \xc3\xa9t\xc3\xa9", b"retry: 5", b"data: [DONE]", b"",
])
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])
_streams = st.lists(st.tuples(_line, _eol), max_size=30).map(
    lambda parts: b"".join(line + eol for line, eol in parts))


@given(_streams, st.lists(st.integers(min_value=0, max_value=400), max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_slicing_gives_the_same_events(body: bytes, cuts: list[int]) -> None:
    whole = parse(body)
    pieces, _ = fed_in(body, [c % (len(body) + 1) for c in cuts])
    assert [(e.event, e.data, e.id) for e in pieces] == [(e.event, e.data, e.id) for e in whole]


@given(_streams, st.lists(st.integers(min_value=0, max_value=400), max_size=12),
       st.sampled_from([16, 64, 4096]))
@settings(max_examples=300, deadline=None)
def test_raw_bytes_reassemble_the_input(body: bytes, cuts: list[int], limit: int) -> None:
    events, _ = fed_in(body, [c % (len(body) + 1) for c in cuts], keep_raw=True,
                       max_event_bytes=limit)
    assert b"".join(e.raw for e in events) == body
