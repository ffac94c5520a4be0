"""The proxy port's ASGI endpoint: ingress checks, route, decision, then the legacy,
shadow or divert path.

Layer: composition on the request path. It is plain ASGI (no Request/Response objects)
because it is the hot path of every LLM call the legacy service makes; each step it takes
is a call into a module that owns that concern.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from proxy.body import ClientGone, RequestBody, declared_length
from proxy.errors import ProxyError, RequestRejected, too_large
from proxy.exchange import Exchange
from proxy.forward import Forwarder, UpstreamAborted
from proxy.headers import get, upstream_request_headers
from proxy.ingress import check_request, request_id
from proxy.routing import RouteTable, Target

log = logging.getLogger("llm_shadow.proxy")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Recorder(Protocol):
    """Receives each finished exchange; must return at once (it queues, never awaits)."""

    def record(self, exchange: Exchange) -> None: ...


class NullRecorder:
    def record(self, exchange: Exchange) -> None:
        return None


class ProxyEndpoint:
    def __init__(
        self,
        routes: RouteTable,
        legacy: Forwarder,
        *,
        body_read_timeout: float,
        request_id_header: str,
        max_header_bytes: int = 32 * 1024,
        recorder: Recorder | None = None,
    ):
        self.routes = routes
        self.legacy = legacy
        self.body_read_timeout = body_read_timeout
        self.request_id_header = request_id_header.lower().encode()
        self.max_header_bytes = max_header_bytes
        self.recorder: Recorder = recorder or NullRecorder()
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        started = time.monotonic()
        method: str = scope["method"]
        headers = scope["headers"]
        try:
            check_request(method, headers, self.max_header_bytes)
            target = self.routes.resolve(scope["raw_path"], scope["query_string"])
            limit = target.route.max_body_bytes
            length = declared_length(get(headers, b"content-length"))
            if length is not None and length > limit:
                raise too_large(limit)
        except RequestRejected as exc:
            await send_error(send, exc)
            return
        record = Exchange(
            request_id=request_id(headers, self.request_id_header),
            method=method,
            route_prefix=target.route.prefix,
            provider=target.route.provider,
            upstream_path=target.path,
            upstream_host=_host(target.route.upstream),
            started_at=started,
        )
        self.in_flight += 1
        try:
            await self._handle(target, method, headers, receive, send, record)
        finally:
            self.in_flight -= 1
            record.finished_at = time.monotonic()
            self.recorder.record(record)

    async def _handle(
        self, target: Target, method: str, headers: list[tuple[bytes, bytes]],
        receive: Receive, send: Send, record: Exchange,
    ) -> None:
        body = RequestBody(receive, limit=target.route.max_body_bytes,
                           read_timeout=self.body_read_timeout)
        watcher = _DisconnectWatcher(receive, body, record)
        try:
            content = await body.start()
            await self.legacy.exchange(
                target, method, upstream_request_headers(headers), content, send,
                record, tee=None,
            )
        except asyncio.CancelledError:
            if not watcher.client_gone:
                raise
            _uncancel()
            record.client_gone = True
        except UpstreamAborted as exc:
            log.warning("upstream stream aborted mid-response: %s", exc)
            raise
        except (ProxyError, ClientGone) as exc:
            # A body that failed (too large, too slow, client gone) surfaces from the HTTP
            # client as an upstream error; the body knows the real cause.
            failure = body.failure or exc
            if isinstance(failure, ClientGone):
                record.client_gone = True
                return
            assert isinstance(failure, ProxyError)
            record.status = failure.status
            record.error_type = failure.code
            record.completed = True
            await send_error(send, failure)
        finally:
            watcher.stop()


class _DisconnectWatcher:
    """Cancels the request's task when the client goes away, so a silent upstream (a
    reasoning model thinking for a minute) is abandoned at once instead of at its next
    chunk, and stops generating (and billing).

    It starts listening only after `DELAY` and once the request body has been consumed:
    fast exchanges never pay for the extra task, and `receive` is never read concurrently
    with the body. It ignores the disconnect uvicorn reports after a completed response.
    """

    DELAY = 0.05

    def __init__(self, receive: Receive, body: RequestBody, record: Exchange):
        self.client_gone = False
        self._receive = receive
        self._body = body
        self._record = record
        self._owner = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(self.DELAY, self._arm)

    def _arm(self) -> None:
        if self._body.complete:
            self._timer = None
            self._task = self._loop.create_task(self._watch())
        else:
            self._timer = self._loop.call_later(self.DELAY, self._arm)

    async def _watch(self) -> None:
        message = await self._receive()
        if (
            message["type"] == "http.disconnect"
            and not self._record.completed
            and self._owner is not None
        ):
            self.client_gone = True
            self._owner.cancel("client disconnected")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


async def send_error(send: Send, error: ProxyError) -> None:
    body = error.body()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if error.close_connection:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
