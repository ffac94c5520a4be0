"""Serving: the proxy and admin listeners under uvicorn in one process, one event loop.

Layer: composition. uvicorn is configured programmatically with what a transparent proxy
needs: no `server`/`date` headers of its own, no trust in `X-Forwarded-*`, the h11 parser
(httptools drops the body of `Upgrade: h2c` requests, uvicorn #2722), no access log (the
traces are the access log, and URLs may carry keys).

Shutdown on SIGTERM/SIGINT: readiness drops at once, the proxy listener stops accepting
and lets in-flight streams finish within `graceful_shutdown_seconds`, then the admin
listener stops and the runtime closes its resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from proxy.app import create_admin_app, create_app
from proxy.config import Settings
from proxy.runtime import Runtime

log = logging.getLogger("llm_shadow.server")


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by `serve` for both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def uvicorn_config(app: Any, host: str, port: int, settings: Settings,
                   graceful: float) -> uvicorn.Config:
    proxy = settings.config.proxy
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=proxy.http_parser,
        loop=_loop_name(),
        lifespan="off",
        server_header=False,
        date_header=False,
        proxy_headers=False,
        access_log=False,
        log_config=None,
        timeout_keep_alive=int(proxy.keepalive_timeout),
        timeout_graceful_shutdown=int(graceful),
    )


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


class Listeners:
    """The proxy and admin listeners of one runtime, served together in the running loop.

    `serve` installs the signal handlers and uses it; `llm-shadow demo` runs it beside
    its own servers on sockets it bound itself (so it knows the ports), with no signal
    handlers of its own. `stop()` drains: readiness drops at once, the proxy listener
    stops accepting and lets in-flight streams finish within the graceful budget; a
    second `stop()` exits at once.
    """

    def __init__(self, runtime: Runtime):
        settings = runtime.settings
        proxy = settings.config.proxy
        self.runtime = runtime
        self.proxy = _Server(uvicorn_config(create_app(runtime), proxy.listen.host,
                                            proxy.listen.port, settings,
                                            proxy.graceful_shutdown_seconds))
        self.admin = _Server(uvicorn_config(create_admin_app(runtime), proxy.admin.host,
                                            proxy.admin.port, settings, 1))

    @property
    def started(self) -> bool:
        return bool(self.proxy.started and self.admin.started)

    def stop(self) -> None:
        if self.runtime.draining:
            self.proxy.force_exit = True
            return
        self.runtime.draining = True
        self.proxy.should_exit = True

    async def serve(self, proxy_sockets: list[socket.socket] | None = None,
                    admin_sockets: list[socket.socket] | None = None) -> None:
        """Until `stop()`: the admin listener outlives the proxy's drain."""
        admin_task = asyncio.create_task(self.admin.serve(admin_sockets))
        try:
            await self.proxy.serve(proxy_sockets)
        finally:
            self.runtime.draining = True
            self.admin.should_exit = True
            await admin_task


async def serve(settings: Settings) -> None:
    async with Runtime(settings) as runtime:
        listeners = Listeners(runtime)

        def stop(signum: int) -> None:
            if not runtime.draining:
                log.info("received %s: draining", signal.Signals(signum).name)
            listeners.stop()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        try:
            await listeners.serve()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def run(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
