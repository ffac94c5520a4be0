"""The bounded copy of a forwarded stream: it keeps the first `limit` bytes whatever the
chunking, says when it stopped copying, and never copies past the cap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.tee import Tee


def fed(limit: int, *chunks: bytes) -> Tee:
    tee = Tee(limit)
    for chunk in chunks:
        tee.feed(chunk)
    return tee


@pytest.mark.parametrize(("limit", "chunks", "value", "truncated"), [
    (10, [], b"", False),
    (10, [b"abc", b"def"], b"abcdef", False),
    (6, [b"abc", b"def"], b"abcdef", False),  # exactly at the cap is whole
    (5, [b"abc", b"def"], b"abcde", True),
    (5, [b"abcdefgh"], b"abcde", True),
    (3, [b"abc", b"", b""], b"abc", False),  # empty chunks after the cap change nothing
    (0, [b""], b"", False),
    (0, [b"x"], b"", True),
])
def test_copy(limit: int, chunks: list[bytes], value: bytes, truncated: bool) -> None:
    tee = fed(limit, *chunks)
    assert tee.value() == value
    assert tee.truncated is truncated


def test_nothing_is_copied_after_the_cap() -> None:
    tee = fed(4, b"abcdef")
    tee.feed(b"gh")
    assert tee.value() == b"abcd"
    assert len(tee.buffer) == 4


def test_value_is_a_snapshot() -> None:
    tee = fed(10, b"ab")
    value = tee.value()
    tee.feed(b"cd")
    assert value == b"ab"


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(st.binary(max_size=200))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked(), st.integers(0, 220))
def test_any_chunking_gives_the_same_prefix(stream: tuple[bytes, list[bytes]],
                                            limit: int) -> None:
    data, chunks = stream
    tee = fed(limit, *chunks)
    assert tee.value() == data[:limit]
    assert tee.truncated is (len(data) > limit)
