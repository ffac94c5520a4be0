"""A small TCP fault proxy (Toxiproxy's useful subset) for putting faults between a
replica and Redis.

It runs its own asyncio loop in a daemon thread, so sync tests, async tests and
subprocesses can all use it, and the mode can be switched at any time:

    pass             forward both directions untouched
    latency          forward, delaying every chunk by `latency` seconds
    blackhole        accept connections but forward nothing, either way (a partition or
                     SYN-dropping firewall as the client sees it: connects may succeed,
                     nothing is ever answered); existing connections go silent too
    reset            abort every connection with a TCP RST, existing and new
    drop_subscriber  forward everything except pub/sub `message` frames to connections
                     that subscribed: hints are lost silently while PINGs still get
                     their pongs (an output-buffer kill or a broken listener, as the
                     replica sees it)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.servers import free_port, wait_for

Mode = Literal["pass", "latency", "blackhole", "reset", "drop_subscriber"]

PUBSUB_MESSAGE = b"$7\r\nmessage\r\n"


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    subscriber: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1",
                 port: int | None = None):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.dropped_messages = 0
        self.accepted = 0
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def set_mode(self, mode: Mode, latency: float = 0.0) -> None:
        self.mode = mode
        self.latency = latency
        if mode == "reset":
            self._call(self._reset_all())

    @property
    def connections(self) -> int:
        return len(self._links)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inside the proxy's loop ---------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_all()

    async def _reset_all(self) -> None:
        for link in list(self._links):
            _abort(link.client)
            if link.upstream is not None:
                _abort(link.upstream)

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        if self.mode == "reset":
            _abort(writer)
            return
        self._links.add(link)
        try:
            if self.mode == "blackhole":
                await self._swallow(reader)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            link.upstream = up_writer
            await asyncio.gather(self._pump(reader, up_writer, link, upstream=True),
                                 self._pump(up_reader, writer, link, upstream=False))
        except OSError:
            pass
        finally:
            self._links.discard(link)
            for stream in (link.client, link.upstream):
                if stream is not None:
                    stream.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    link: _Link, *, upstream: bool) -> None:
        try:
            while data := await reader.read(65536):
                if upstream and b"SUBSCRIBE" in data.upper():
                    link.subscriber = True
                if not self._passes(data, link, upstream):
                    continue
                if self.mode == "latency" and self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    def _passes(self, data: bytes, link: _Link, upstream: bool) -> bool:
        if self.mode == "blackhole":
            return False
        if self.mode == "drop_subscriber" and not upstream and link.subscriber \
                and PUBSUB_MESSAGE in data:
            self.dropped_messages += 1
            return False
        return True


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a firewall reset would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def redis_through(proxy: FaultProxy) -> None:
    """Wait until Redis answers through the proxy (the proxy is in `pass` mode)."""
    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_for(ping, message=f"redis through fault proxy :{proxy.port}")
