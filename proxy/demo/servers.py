"""Serving the demo's ASGI apps and the proxy's listeners on loopback, in this event loop.

Layer: adapter (uvicorn and sockets). Each server gets a socket bound to 127.0.0.1 on a
free port before anything starts, so every port is known when the configuration is
built and no other process can take it in between (no pick-a-port-and-hope race).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

STOP_BUDGET_SECONDS = 5.0


def loopback_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a free port, not yet listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the demo stops it, or Ctrl-C does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LoopbackServer:
    """One fake API under uvicorn on its own loopback port."""

    def __init__(self, name: str, app: Any):
        self.name = name
        self.socket = loopback_socket()
        self.port = port_of(self.socket)
        self.server = _Server(uvicorn.Config(
            app, lifespan="off", log_config=None, access_log=False, server_header=False,
            date_header=False, timeout_keep_alive=60))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self.server.serve([self.socket]), name=f"demo-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            self.socket.close()
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(task, STOP_BUDGET_SECONDS)
        except TimeoutError:
            self.server.force_exit = True


async def wait_started(servers: list[Any], timeout: float) -> None:
    """Until every server (anything with `.started`) serves; TimeoutError after `timeout`."""
    async with asyncio.timeout(timeout):
        while not all(server.started for server in servers):
            await asyncio.sleep(0.01)
