"""The proxy port's ASGI endpoint: one straight path per request.

Layer: composition on the request path. It is plain ASGI (no Request/Response objects)
because it is the hot path of every LLM call the legacy service makes; each step is a
call into the module that owns that concern:

    1. ingress checks (framing, methods, header size)      proxy.ingress
    2. route: path prefix → fixed upstream                  proxy.routing
    3. decision on the in-memory flag view                  proxy.decision
    4. the request's trace opens (this module owns it)      proxy.telemetry
    5. legacy (+ shadow launched beside it) or divert       proxy.forward, proxy.shadow,
                                                            proxy.divert
    6. the trace closes; the exchange goes to the recorder  proxy.recording

Nothing here awaits Redis, the shadow or any recording: the decision reads an in-memory
flag view, the shadow runs as its own task, and the finished exchange is handed to a
queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from proxy.apis import parse_payload
from proxy.asgi import Receive, Scope, Send
from proxy.body import ClientGone, RequestBody, declared_length
from proxy.config.shadow import ShadowSection
from proxy.decision import bucket_key, decide
from proxy.divert import Diverter
from proxy.errors import ProxyError, RequestRejected, too_large
from proxy.exchange import Exchange
from proxy.flags.counters import DecisionCounters
from proxy.flags.watcher import FlagWatcher
from proxy.forward import Content, Forwarder, UpstreamAborted
from proxy.headers import RawHeaders, get, tagged, upstream_request_headers
from proxy.ingress import check_request, request_id
from proxy.inject import prepare
from proxy.orchestrator.request import LiveSettings
from proxy.orchestrator.target import Role, TargetCall
from proxy.routing import Destination, RouteTable
from proxy.shadow.runner import ShadowJob, ShadowRunner, skip_reason
from proxy.tee import Tee
from proxy.telemetry.recorder import Telemetry

log = logging.getLogger("llm_shadow.proxy")


class Recorder(Protocol):
    """Receives each finished exchange; must return at once (it queues, never awaits)."""

    def record(self, exchange: Exchange) -> None: ...


@dataclass
class Load:
    """Requests being served right now: the handler counts them, `/statz` shows them."""

    in_flight: int = 0


@dataclass(frozen=True)
class Limits:
    """What the request path bounds, and the headers it reads."""

    body_read_timeout: float
    request_id_header: bytes
    task_hint_header: bytes
    max_header_bytes: int = 32 * 1024


@dataclass(frozen=True)
class Traffic:
    """Who splits traffic: the live flags, the shadow and divert paths, and the limits
    of the copies kept for comparison."""

    flags: FlagWatcher
    decisions: DecisionCounters
    shadow: ShadowRunner
    divert: Diverter
    shadow_settings: ShadowSection
    inject_usage_routes: tuple[str, ...] = ()


class ProxyEndpoint:
    def __init__(self, routes: RouteTable, legacy: Forwarder, traffic: Traffic,
                 telemetry: Telemetry, recorder: Recorder, limits: Limits, load: Load):
        self.routes = routes
        self.legacy = legacy
        self.traffic = traffic
        self.telemetry = telemetry
        self.recorder = recorder
        self.limits = limits
        self.load = load

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        started = time.monotonic()
        headers = scope["headers"]
        try:
            check_request(scope["method"], headers, self.limits.max_header_bytes)
            destination = self.routes.resolve(scope["raw_path"], scope["query_string"])
            limit = destination.route.max_body_bytes
            length = declared_length(get(headers, b"content-length"))
            if length is not None and length > limit:
                raise too_large(limit)
        except RequestRejected as exc:
            await send_error(send, exc, request_id(headers, self.limits.request_id_header),
                             self.limits.request_id_header)
            return
        record = self._open(scope, destination, started)
        self.load.in_flight += 1
        try:
            await self._handle(headers, receive, send, record)
        finally:
            self.load.in_flight -= 1
            if record.finished_at is None:
                record.finished_at = time.monotonic()
            self._close(record)
            self.recorder.record(record)

    def _open(self, scope: Scope, destination: Destination, started: float) -> Exchange:
        """Decide on the current flag view, and open the request's trace."""
        headers = scope["headers"]
        rid = request_id(headers, self.limits.request_id_header)
        view = self.traffic.flags.current
        local = view.local
        key = bucket_key(_header_text(headers, local.bucket_header.encode()), rid)
        decision = decide(view, destination.prefix, destination.path, key,
                          local.eligible_paths)
        self.traffic.decisions.record(decision)
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        trace = self.telemetry.start_request(scope["method"], destination.prefix, target, rid,
                                             headers=headers, started_at=started)
        record = Exchange(rid, scope["method"], destination, started, decision, view, trace,
                          eligible=destination.path in local.eligible_paths)
        skip = skip_reason(decision)
        if skip is not None:
            self.traffic.shadow.skip(skip, destination.prefix)
            record.shadow_skip = skip
        return record

    def _close(self, record: Exchange) -> None:
        self.telemetry.end_request(
            record.trace, record.status, record.decision.action,
            decision_reason=record.decision.reason, bucket=record.decision.bucket,
            answered_by=record.answered_by, error_type=record.error_type,
            fallback_reason=record.fallback_reason, shadow_skip_reason=record.shadow_skip,
            cut_reason=record.cut_reason,
            flag_version=record.view.version, flag_state=record.view.state,
            client_gone=record.client_gone, ended_at=record.finished_at)

    async def _handle(self, headers: RawHeaders, receive: Receive, send: Send,
                      record: Exchange) -> None:
        destination = record.destination
        settings = self.traffic.shadow_settings
        # Eligible endpoints (LLM calls) keep bounded copies of the request and the answer,
        # for usage, cost and comparison; anything else is only relayed.
        keep = settings.max_body_bytes if record.eligible else 0
        body = RequestBody(receive, limit=destination.route.max_body_bytes,
                           read_timeout=self.limits.body_read_timeout, keep=keep)
        watcher = _DisconnectWatcher(receive, body, record)
        job: ShadowJob | None = None
        tee = Tee(settings.tee_max_bytes) if record.eligible else None
        try:
            action = record.decision.action
            if action == "divert":
                call = self._call("divert", headers, await body.read(), record)
                await self.traffic.divert.serve(call, send, record, tee)
                return
            content: Content = await body.start(keep if action == "shadow" else 0)
            if action == "shadow":
                job = self._shadow(headers, content, record)
            await self._forward(headers, content, send, record, tee)
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
            if record.status is not None:  # the response already started: abort it
                raise
            record.status = failure.status
            record.error_type = failure.code
            record.completed = True
            await send_error(send, failure, record.request_id, self.limits.request_id_header)
        finally:
            watcher.stop()
            record.finished_at = time.monotonic()
            record.request_body = body.kept()
            if tee is not None:
                record.response_body = tee.value()
                record.response_truncated = tee.truncated
            if job is not None:
                job.legacy_finished(record.legacy_answer())

    async def _forward(self, headers: RawHeaders, content: Content, send: Send,
                       record: Exchange, tee: Tee | None) -> None:
        """The legacy path; with opt-in usage injection the body sent upstream asks for
        the stream's usage, and the client's stream is rewritten back."""
        forwarded = upstream_request_headers(headers)
        rewrite = None
        if isinstance(content, bytes) and record.eligible:
            content, rewrite = prepare(content, record.destination.prefix,
                                       self.traffic.inject_usage_routes)
            if rewrite is not None:  # the body changed: its length is recomputed
                forwarded = [(k, v) for k, v in forwarded if k != b"content-length"]
        await self.legacy.exchange(record, forwarded, content, send, tee=tee, rewrite=rewrite)

    def _call(self, role: Role, headers: RawHeaders, body: bytes,
              record: Exchange) -> TargetCall:
        hint = get(headers, self.limits.task_hint_header)
        return TargetCall(
            role=role, destination=record.destination, method=record.method, body=body,
            payload=parse_payload(body), request_id=record.request_id, client_headers=headers,
            trace_headers=record.trace.outgoing_headers(),
            live=LiveSettings.from_snapshot(record.view.snapshot),
            task_hint=hint.decode("latin-1") if hint else None,
            capture_content=self.telemetry.captures_content)

    def _shadow(self, headers: RawHeaders, content: Content,
                record: Exchange) -> ShadowJob | None:
        """Launch the shadow beside the legacy call; never fails the legacy request.
        Room and pressure are checked first, so a refused shadow (shed under load, no
        room) costs an attribute read and three counts (the runner's, the metric's, the
        report buffer's, written once per route and reason at its next flush); a
        launched one about 5 µs here (the call described, the task created), its work
        all in its own task."""
        shadow = self.traffic.shadow
        route = record.destination.prefix
        if not isinstance(content, bytes) or \
                len(content) > self.traffic.shadow_settings.max_body_bytes:
            shadow.skip("body_too_large", route)
            record.shadow_skip = "body_too_large"
            return None
        refused = shadow.refuse(route)
        if refused is not None:
            record.shadow_skip = refused
            return None
        try:
            job = ShadowJob(self._call("shadow", headers, content, record), record.trace)
            shadow.spawn(job)
            return job
        except Exception:  # preparing a shadow must never fail the legacy request
            log.exception("shadow of request %s not started", record.request_id)
            shadow.skip("error", route)
            return None


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


def _header_text(headers: RawHeaders, name: bytes) -> str | None:
    value = get(headers, name)
    return value.decode("latin-1") if value else None


async def send_error(send: Send, error: ProxyError, request_id: str,
                     request_id_header: bytes) -> None:
    body = error.body()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if error.close_connection:
        headers.append((b"connection", b"close"))
    tagged(headers, request_id, request_id_header)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
