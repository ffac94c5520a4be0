"""A faulty external orchestrator (`orchestrator.endpoint`) on a raw socket: it answers,
stalls, fails, hangs, resets or dies in the middle of a body, on command or at random.

Raw asyncio streams, not an ASGI server, because the faults live below HTTP frameworks:
headers then half a body then a closed connection, a TCP reset after the headers, a body
sent without any length and cut short (which no transport error reveals). It runs its
own loop in a daemon thread, so sync tests, async tests and subprocess proxies can use
it. Every response closes its connection (`Connection: close`).

Faults (`mode`), chosen per request by the `x-chaos` request header, else by `default`,
else at random by `weights` (seeded):

    answer        the whole answer (streamed when the request asks for a stream)
    slow          the whole answer after `slow_seconds`
    stall         headers and part of the body, `stall_seconds` of silence, the rest
    status_500    an OpenAI error body with status 500
    hang          read the request, never answer (until the client goes away)
    reset         read the request, then a TCP reset before any byte
    cut           headers and part of the body, then close (a `Content-Length` it does
                  not honour; a stream without its last chunk)
    cut_unframed  non-streamed: no length at all, half the JSON, then close
    reset_mid     headers and part of the body, then a TCP reset

`GET /__chaos/served` answers the count of requests served by mode (never a fault).

Answers are the fake upstream's shapes (OpenAI chat, Anthropic messages, Responses) with
the text `orchestrator: <prompt>`, so a client can tell them from legacy's
`Answer to: <prompt>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import orjson

from tests.fakes.servers import free_port, wait_for
from tests.fakes.upstream import (
    Behaviour,
    anthropic_events,
    anthropic_message,
    chat_chunks,
    chat_completion,
    prompt_text,
    responses_events,
    responses_object,
)

MODES = ("answer", "slow", "stall", "status_500", "hang", "reset", "cut", "cut_unframed",
         "reset_mid")


def intended_text(payload: dict[str, Any]) -> str:
    """The text the orchestrator means to answer `payload` with."""
    return f"orchestrator: {prompt_text(payload)}"


def answer_bytes(path: str, payload: dict[str, Any]) -> tuple[bytes, list[bytes]]:
    """(the non-streamed body, the stream's events) of the answer to one request."""
    behaviour = Behaviour(answer=intended_text(payload), chunks=4)
    if path.endswith("/messages"):
        return (orjson.dumps(anthropic_message(payload, behaviour)),
                anthropic_events(payload, behaviour))
    if path.endswith("/responses"):
        return (orjson.dumps(responses_object(payload, behaviour)),
                responses_events(payload, behaviour))
    return orjson.dumps(chat_completion(payload, behaviour)), chat_chunks(payload, behaviour)


class ChaosOrchestrator:
    def __init__(self, *, default: str | None = None, weights: dict[str, float] | None = None,
                 seed: int = 0, slow_seconds: float = 0.3, stall_seconds: float = 0.3,
                 port: int | None = None):
        self.default = default
        self.weights = weights or {"answer": 1.0}
        self.slow_seconds = slow_seconds
        self.stall_seconds = stall_seconds
        self.port = port or free_port()
        self.served: Counter[str] = Counter()  # requests by the mode they got
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChaosOrchestrator:
        self._thread.start()
        self._run(self._listen())
        wait_for(lambda: self._server is not None, message="chaos orchestrator")
        return self

    def stop(self) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> ChaosOrchestrator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  backlog=1024)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    def _mode(self, headers: dict[str, str]) -> str:
        chosen = headers.get("x-chaos") or self.default
        if chosen is None:
            modes = list(self.weights)
            chosen = self._random.choices(modes, [self.weights[m] for m in modes])[0]
        return chosen

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            path, headers, body = request
            if path == "/__chaos/served":
                counts = orjson.dumps(dict(self.served))
                await _send(writer, _head(200, "application/json", len(counts)) + counts)
                return
            mode = self._mode(headers)
            self.served[mode] += 1
            await self._respond(mode, path, body, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, mode: str, path: str, body: bytes,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if mode == "hang":
            await reader.read()  # until the client goes away
            return
        if mode == "reset":
            _reset(writer)
            return
        if mode == "status_500":
            error = orjson.dumps({"error": {"message": "chaos", "type": "server_error",
                                            "param": None, "code": "500"}})
            await _send(writer, _head(500, "application/json", len(error)) + error)
            return
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = {}
        whole, events = answer_bytes(path, payload if isinstance(payload, dict) else {})
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if payload.get("stream"):
            await self._stream(mode, events, writer)
        else:
            await self._whole(mode, whole, writer)

    async def _whole(self, mode: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        half = len(body) // 2
        if mode == "cut_unframed":
            await _send(writer, _head(200, "application/json", None) + body[:half])
            return
        await _send(writer, _head(200, "application/json", len(body)) + body[:half])
        if mode == "cut":
            return
        if mode == "reset_mid":
            _reset(writer)
            return
        if mode == "stall":
            await asyncio.sleep(self.stall_seconds)
        await _send(writer, body[half:])

    async def _stream(self, mode: str, events: list[bytes],
                      writer: asyncio.StreamWriter) -> None:
        head = _head(200, "text/event-stream; charset=utf-8", None, chunked=True)
        await _send(writer, head)
        half = max(1, len(events) // 2)
        for index, event in enumerate(events):
            if index == half:
                if mode in ("cut", "cut_unframed"):
                    return
                if mode == "reset_mid":
                    _reset(writer)
                    return
                if mode == "stall":
                    await asyncio.sleep(self.stall_seconds)
            await _send(writer, b"%x\r\n%s\r\n" % (len(event), event))
        await _send(writer, b"0\r\n\r\n")


async def _read_request(reader: asyncio.StreamReader
                        ) -> tuple[str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1].split("?")[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return path, headers, body


def _head(status: int, content_type: str, length: int | None, chunked: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
             f"content-type: {content_type}", "connection: close"]
    if length is not None:
        lines.append(f"content-length: {length}")
    if chunked:
        lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
