"""The request body read from ASGI `receive`: once, bounded by the route's limit and the
read deadline, with a bounded copy kept for whoever needs it afterwards. Driven with a
scripted `receive`, as the ASGI server would call it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import pytest

from proxy.body import ClientGone, RequestBody, declared_length
from proxy.errors import RequestRejected

T = TypeVar("T")
Message = dict[str, Any]


def part(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


DISCONNECT: Message = {"type": "http.disconnect"}


class Script:
    """`receive` that answers with the given messages, then waits forever (a client that
    sends nothing more), counting how many messages were asked for."""

    def __init__(self, messages: Iterable[Message]):
        self.messages = list(messages)
        self.asked = 0

    async def __call__(self) -> Message:
        self.asked += 1
        if self.messages:
            return self.messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(30):  # a hung test fails instead of hanging
            return await make()
    return asyncio.run(main())


def body_of(messages: Iterable[Message], *, limit: int = 1000, read_timeout: float = 30.0,
            keep: int = 0) -> tuple[RequestBody, Script]:
    script = Script(messages)
    return RequestBody(script, limit=limit, read_timeout=read_timeout, keep=keep), script


async def drain(content: bytes | AsyncIterator[bytes]) -> bytes:
    if isinstance(content, bytes):
        return content
    return b"".join([chunk async for chunk in content])


# --- start(): bytes when the body is whole in hand, else an iterator ------------------

def test_a_body_in_one_message_is_returned_as_it_came() -> None:
    async def go() -> None:
        payload = b'{"model": "m"}'
        body, script = body_of([part(payload, more=False)])
        content = await body.start()
        assert content is payload  # not copied: the cheapest body to forward
        assert body.complete and body.size == len(payload)
        assert script.asked == 1
    run(go)


def test_an_empty_body() -> None:
    async def go() -> None:
        body, _ = body_of([{"type": "http.request"}])
        assert await body.start() == b""
        assert body.complete
    run(go)


def test_a_streamed_body_within_up_to_is_joined_into_bytes() -> None:
    async def go() -> None:
        body, script = body_of([part(b"ab"), part(b"cd"), part(b"ef", more=False)])
        content = await body.start(up_to=100)
        assert content == b"abcdef"
        assert script.asked == 3 and body.complete
    run(go)


def test_a_streamed_body_without_up_to_streams_from_the_first_message() -> None:
    async def go() -> None:
        body, script = body_of([part(b"ab"), part(b"cd"), part(b"ef", more=False)])
        content = await body.start()
        assert not isinstance(content, bytes)
        assert script.asked == 1  # nothing more is read until the iterator asks
        assert not body.complete
        assert await drain(content) == b"abcdef"
        assert body.complete
    run(go)


def test_a_body_longer_than_up_to_streams_what_was_read_then_the_rest() -> None:
    async def go() -> None:
        body, script = body_of([part(b"ab"), part(b"cd"), part(b"ef"),
                                part(b"gh", more=False)])
        content = await body.start(up_to=3)
        assert not isinstance(content, bytes)
        assert script.asked == 2  # read until 3 bytes were in hand, no further
        assert await drain(content) == b"abcdefgh"
    run(go)


def test_empty_chunks_are_not_yielded() -> None:
    async def go() -> None:
        body, _ = body_of([part(b""), part(b"ab"), part(b""), part(b"", more=False)])
        content = await body.start()
        assert not isinstance(content, bytes)
        assert [chunk async for chunk in content] == [b"ab"]
    run(go)


def test_read_returns_the_whole_body() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"ab"), part(b"cd", more=False)])
        assert await body.read() == b"abcd"
    run(go)


# --- limits: 413, 408, a client that goes away ------------------------------------------

def test_over_the_limit_is_413_and_closes_the_connection() -> None:
    async def go() -> None:
        body, script = body_of([part(b"a" * 6), part(b"a" * 6), part(b"a", more=False)],
                               limit=10)
        with pytest.raises(RequestRejected) as caught:
            await body.start(up_to=100)
        assert caught.value.status == 413 and caught.value.code == "body_too_large"
        assert caught.value.close_connection
        assert body.failure is caught.value
        assert script.asked == 2  # nothing read past the message that broke the limit
    run(go)


def test_exactly_the_limit_passes() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"a" * 6), part(b"a" * 4, more=False)], limit=10)
        assert await body.read() == b"a" * 10
        assert body.failure is None
    run(go)


def test_the_limit_holds_while_streaming() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"a" * 6), part(b"a" * 6, more=False)], limit=10)
        content = await body.start()
        assert not isinstance(content, bytes)
        with pytest.raises(RequestRejected) as caught:
            await drain(content)
        assert caught.value.status == 413
        assert body.failure is caught.value
    run(go)


def test_a_body_that_never_arrives_is_408_at_the_deadline() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"ab")], read_timeout=0.05)
        with pytest.raises(RequestRejected) as caught:
            await body.read()
        assert caught.value.status == 408 and caught.value.code == "request_timeout"
        assert caught.value.close_connection
        assert body.failure is caught.value
    run(go)


def test_the_deadline_is_for_the_whole_body_not_each_message() -> None:
    """A client trickling a byte at a time, each well within the deadline, still gets a
    408: the deadline bounds the whole upload."""
    async def trickle() -> Message:
        await asyncio.sleep(0.01)
        return part(b"a")

    async def go() -> None:
        body = RequestBody(trickle, limit=1 << 30, read_timeout=0.2)
        with pytest.raises(RequestRejected) as caught:
            await body.read()
        assert caught.value.status == 408
        assert body.size > 1
    run(go)


def test_a_client_gone_mid_upload_is_client_gone_not_a_short_body() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"ab"), DISCONNECT])
        content = await body.start()
        assert not isinstance(content, bytes)
        with pytest.raises(ClientGone):
            await drain(content)
        assert isinstance(body.failure, ClientGone)
        assert not body.complete
        assert body.kept() is None
    run(go)


def test_a_client_gone_before_the_first_byte() -> None:
    async def go() -> None:
        body, _ = body_of([DISCONNECT])
        with pytest.raises(ClientGone):
            await body.start()
    run(go)


# --- the kept copy ------------------------------------------------------------------

@pytest.mark.parametrize(("keep", "kept"), [
    (100, b"abcdef"),
    (6, b"abcdef"),  # exactly the cap: kept whole
    (5, None),  # over the cap: not kept whole, so not kept at all
    (0, None),  # nothing asked to be kept
])
def test_the_kept_copy(keep: int, kept: bytes | None) -> None:
    async def go() -> None:
        body, _ = body_of([part(b"abc"), part(b"def", more=False)], keep=keep)
        assert await body.read() == b"abcdef"  # the forwarded body is whole either way
        assert body.kept() == kept
        assert len(body.copy) <= keep
    run(go)


def test_an_empty_body_is_kept_as_empty() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"", more=False)], keep=0)
        await body.read()
        assert body.kept() == b""
    run(go)


def test_nothing_is_kept_before_the_body_is_complete() -> None:
    async def go() -> None:
        body, _ = body_of([part(b"abc"), part(b"def", more=False)], keep=100)
        content = await body.start()
        assert body.kept() is None
        await drain(content)
        assert body.kept() == b"abcdef"
    run(go)


# --- Content-Length as declared -------------------------------------------------------

@pytest.mark.parametrize(("value", "length"), [(None, None), (b"0", 0), (b"123", 123)])
def test_declared_length(value: bytes | None, length: int | None) -> None:
    assert declared_length(value) == length


@pytest.mark.parametrize("value", [b"", b"-1", b"1.5", b"12a", b" 1"])
def test_a_malformed_declared_length_is_refused(value: bytes) -> None:
    with pytest.raises(RequestRejected) as caught:
        declared_length(value)
    assert caught.value.status == 400
