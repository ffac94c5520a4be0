"""Serving: the proxy and admin listeners under uvicorn in one process, one event loop.

Layer: composition. uvicorn is configured programmatically with what a transparent proxy
needs: no `server`/`date` headers of its own, no trust in `X-Forwarded-*`, the h11 parser
(httptools drops the body of `Upgrade: h2c` requests, uvicorn #2722), no access log (the
traces are the access log, and URLs may carry keys).

Shutdown on SIGTERM/SIGINT: readiness drops at once, the proxy listener stops accepting
and lets in-flight streams finish within `graceful_shutdown_seconds`, then the admin
listener stops and the runtime closes its resources.

Start-up banner: uvicorn logs the same `Uvicorn running on ...` line for both listeners
(and each of its lifecycle lines twice); those are left out (`UvicornEcho`) and each
listener says instead what it is: the proxy with its routes, the admin port with its
endpoints and whether its writes are on (they need `LLM_SHADOW_ADMIN_TOKEN`).
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
from proxy.forward import UpstreamAborted
from proxy.runtime import Runtime

log = logging.getLogger("llm_shadow.server")


# uvicorn's lifecycle lines, said once per listener without saying which one.
UVICORN_ECHO = ("Started server process", "Finished server process", "Uvicorn running on",
                "Shutting down", "Waiting for application")


class UvicornEcho(logging.Filter):
    """Drops uvicorn's INFO lifecycle lines, and its traceback for a response the proxy
    aborted on purpose (an upstream or orchestrator stream that broke after its first
    byte: the handler raises to make uvicorn cut the connection, and has already logged
    one line saying so). Other warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UpstreamAborted):
            return False
        return record.levelno > logging.INFO or not str(record.msg).startswith(UVICORN_ECHO)


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by `serve` for both listeners, and
    which says which listener it is once it listens."""

    def __init__(self, config: uvicorn.Config, banner: str = ""):
        super().__init__(config)
        self.banner = banner

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.banner:
            log.info("%s", self.banner.replace("{url}", self.url))

    @property
    def url(self) -> str:
        for server in getattr(self, "servers", []):
            for sock in server.sockets or ():
                host, port = sock.getsockname()[:2]
                return f"http://{host}:{port}" if ":" not in host else \
                    f"http://[{host}]:{port}"
        return f"http://{self.config.host}:{self.config.port}"


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, UvicornEcho) for f in logger.filters):
        logger.addFilter(UvicornEcho())


def banners(runtime: Runtime) -> tuple[str, str]:
    """What each listener says once it listens (`{url}` becomes its URL)."""
    settings = runtime.settings
    routes = ", ".join(route.prefix for route in settings.config.proxy.routes)
    writes = ("on (Authorization: Bearer $LLM_SHADOW_ADMIN_TOKEN)"
              if runtime.flag_service.auth.enabled else
              "OFF: no LLM_SHADOW_ADMIN_TOKEN is set, so they answer 403")
    feedback = ", POST /feedback" if runtime.pipeline is not None else ""
    return (f"proxy listening on {{url}} (routes {routes})",
            f"admin listening on {{url}} (/healthz /readyz /flagz /statz /metrics); writes "
            f"(PUT /flags, POST /rollback{feedback}) {writes}")


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
        install_log_filter()
        proxy_banner, admin_banner = banners(runtime)
        self.proxy = _Server(uvicorn_config(create_app(runtime), proxy.listen.host,
                                            proxy.listen.port, settings,
                                            proxy.graceful_shutdown_seconds), proxy_banner)
        self.admin = _Server(uvicorn_config(create_admin_app(runtime), proxy.admin.host,
                                            proxy.admin.port, settings, 1), admin_banner)

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
    log.info("stopped")


def run(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
