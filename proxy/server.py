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
from collections.abc import Callable, Generator
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


async def serve(settings: Settings, on_ready: Callable[[Runtime], None] | None = None) -> None:
    config = settings.config
    async with Runtime(settings) as runtime:
        proxy_server = _Server(uvicorn_config(
            create_app(runtime), config.proxy.listen.host, config.proxy.listen.port,
            settings, config.proxy.graceful_shutdown_seconds))
        admin_server = _Server(uvicorn_config(
            create_admin_app(runtime), config.proxy.admin.host, config.proxy.admin.port,
            settings, 1))

        def stop(signum: int) -> None:
            if runtime.draining:
                proxy_server.force_exit = True
                return
            log.info("received %s: draining", signal.Signals(signum).name)
            runtime.draining = True
            proxy_server.should_exit = True

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        admin_task = asyncio.create_task(admin_server.serve())
        try:
            await proxy_server.serve()
        finally:
            runtime.draining = True
            admin_server.should_exit = True
            await admin_task
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def run(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
