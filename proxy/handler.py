"""The proxy port's ASGI endpoint: ingress checks, route, decision, then the legacy,
shadow or divert path.

Layer: composition on the request path. It is plain ASGI (no Request/Response objects)
because it is the hot path of every LLM call the legacy service makes; each step it takes
is a call into the module that owns that concern. Nothing here awaits Redis, the shadow
or any recording: the decision reads an in-memory flag view, the shadow is launched as
its own task, and the finished exchange is handed to a queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.body import ClientGone, RequestBody, declared_length
from proxy.config.shadow import ShadowSection
from proxy.decision import Decision, bucket_key, decide
from proxy.divert import Diverter
from proxy.errors import ProxyError, RequestRejected, too_large
from proxy.exchange import Exchange
from proxy.flags.counters import DecisionCounters
from proxy.flags.watcher import FlagWatcher
from proxy.forward import Forwarder, UpstreamAborted
from proxy.headers import RawHeaders, get, upstream_request_headers
from proxy.ingress import check_request, request_id
from proxy.inject import prepare
from proxy.orchestrator.request import LiveSettings
from proxy.orchestrator.target import TargetCall
from proxy.recording.calls import parse_payload
from proxy.recording.worker import captured_of
from proxy.routing import RouteTable, Target
from proxy.shadow.runner import ShadowJob, ShadowRunner
from proxy.tee import Tee
from proxy.telemetry.recorder import Telemetry
from proxy.usage.meter import api_for_path

log = logging.getLogger("llm_shadow.proxy")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Legacy decisions whose reason is also a shadow skip reason, for the skip counters.
SKIP_FOR_REASON = {"outside_bands": "sampled_out", "not_eligible": "not_eligible",
                   "kill": "kill", "route_kill": "kill"}


class Recorder(Protocol):
    """Receives each finished exchange; must return at once (it queues, never awaits)."""

    def record(self, exchange: Exchange) -> None: ...


class NullRecorder:
    def record(self, exchange: Exchange) -> None:
        return None


@dataclass
class Traffic:
    """What the request path needs to split traffic: live flags, the two orchestrator
    paths, and telemetry."""

    flags: FlagWatcher
    decisions: DecisionCounters
    shadow: ShadowRunner
    divert: Diverter
    telemetry: Telemetry
    shadow_settings: ShadowSection
    task_hint_header: bytes
    inject_usage_routes: tuple[str, ...] = ()


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
        traffic: Traffic | None = None,
    ):
        self.routes = routes
        self.legacy = legacy
        self.body_read_timeout = body_read_timeout
        self.request_id_header = request_id_header.lower().encode()
        self.max_header_bytes = max_header_bytes
        self.recorder: Recorder = recorder or NullRecorder()
        self.traffic = traffic
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
            await self._handle(scope, target, headers, receive, send, record)
        finally:
            self.in_flight -= 1
            if record.finished_at is None:
                record.finished_at = time.monotonic()
            self.recorder.record(record)

    async def _handle(self, scope: Scope, target: Target, headers: RawHeaders,
                      receive: Receive, send: Send, record: Exchange) -> None:
        decision = self._decide(scope, target, headers, record)
        # Eligible endpoints (LLM calls) keep bounded copies of the request and the answer,
        # for usage, cost and comparison; anything else is only relayed.
        keep = tee_size = 0
        if self.traffic is not None and record.notes["eligible"]:
            keep = self.traffic.shadow_settings.max_body_bytes
            tee_size = self.traffic.shadow_settings.tee_max_bytes
        body = RequestBody(receive, limit=target.route.max_body_bytes,
                           read_timeout=self.body_read_timeout, keep=keep)
        watcher = _DisconnectWatcher(receive, body, record)
        job: ShadowJob | None = None
        tee = Tee(tee_size) if tee_size else None
        try:
            if decision is not None and decision.action == "divert":
                await self._divert(target, headers, body, send, record, tee)
                return
            if decision is not None and decision.action == "shadow":
                content = await body.start(keep)
                job = self._shadow_job(target, headers, content, record)
            else:
                content = await body.start()
            rewrite = None
            forwarded = upstream_request_headers(headers)
            if self.traffic is not None and isinstance(content, bytes) and keep:
                content, rewrite = prepare(content, target.route.prefix,
                                           self.traffic.inject_usage_routes)
                if rewrite is not None:  # the body changed: its length is recomputed
                    forwarded = [(k, v) for k, v in forwarded if k != b"content-length"]
            await self.legacy.exchange(target, record.method, forwarded, content, send,
                                       record, tee=tee, rewrite=rewrite)
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
            await send_error(send, failure)
        finally:
            watcher.stop()
            record.finished_at = time.monotonic()
            record.request_body = body.kept()
            if tee is not None:
                record.response_body = tee.value()
                record.response_truncated = tee.truncated
            if job is not None:
                job.legacy_finished(captured_of(record))

    def _decide(self, scope: Scope, target: Target, headers: RawHeaders,
                record: Exchange) -> Decision | None:
        traffic = self.traffic
        if traffic is None:
            return None
        view = traffic.flags.current
        local = view.local
        key = bucket_key(_header_text(headers, local.bucket_header.encode()),
                         record.request_id)
        decision = decide(view, target.route.prefix, target.path, key, local.eligible_paths)
        traffic.decisions.record(decision)
        record.decision = decision
        record.notes["flag_version"] = view.version
        record.notes["flag_state"] = view.state
        record.notes["view"] = view
        record.notes["eligible"] = target.path in local.eligible_paths
        target_text = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target_text += "?" + scope["query_string"].decode("latin-1")
        record.notes["trace"] = traffic.telemetry.start_request(
            record.method, target.route.prefix, target_text,
            record.request_id, headers=headers, started_at=record.started_at)
        skip = SKIP_FOR_REASON.get(decision.reason)
        if skip is not None and decision.action == "legacy":
            traffic.shadow.skip(skip, target.route.prefix)
            record.notes["shadow_skip"] = skip
        return decision

    def _call(self, role: str, target: Target, headers: RawHeaders, body: bytes,
              record: Exchange) -> TargetCall:
        traffic = self.traffic
        assert traffic is not None
        view = record.notes["view"]
        snapshot = view.snapshot
        trace = record.notes.get("trace")
        hint = get(headers, traffic.task_hint_header)
        return TargetCall(
            role=role,  # type: ignore[arg-type]
            provider=target.route.provider, path=target.path,
            query=target.url.partition("?")[2].encode("latin-1"), method=record.method,
            body=body, payload=parse_payload(body), request_id=record.request_id,
            client_headers=headers,
            trace_headers=trace.outgoing_headers() if trace is not None else (),
            live=LiveSettings.from_snapshot(snapshot),
            task_hint=hint.decode("latin-1") if hint else None,
            capture_content=traffic.telemetry.captures_content)

    def _shadow_job(self, target: Target, headers: RawHeaders, content: Any,
                    record: Exchange) -> ShadowJob | None:
        traffic = self.traffic
        assert traffic is not None
        if not isinstance(content, bytes) or len(content) > traffic.shadow_settings.max_body_bytes:
            traffic.shadow.skip("body_too_large", target.route.prefix)
            record.notes["shadow_skip"] = "body_too_large"
            return None
        try:
            return self._launch_shadow(target, headers, content, record)
        except Exception:  # preparing a shadow must never fail the legacy request
            log.exception("shadow of request %s not started", record.request_id)
            traffic.shadow.skip("error", target.route.prefix)
            return None

    def _launch_shadow(self, target: Target, headers: RawHeaders, content: bytes,
                       record: Exchange) -> ShadowJob | None:
        traffic = self.traffic
        assert traffic is not None
        call = self._call("shadow", target, headers, content, record)
        job = ShadowJob(call=call, route=target, api=api_for_path(target.path,
                                                                  target.route.provider),
                        legacy_headers=upstream_request_headers(headers),
                        parent=record.notes.get("trace"), payload=call.payload)
        return job if traffic.shadow.launch(job) else None

    async def _divert(self, target: Target, headers: RawHeaders, body: RequestBody,
                      send: Send, record: Exchange, tee: Tee | None) -> None:
        traffic = self.traffic
        assert traffic is not None
        content = await body.read()
        call = self._call("divert", target, headers, content, record)
        await traffic.divert.serve(
            route=target, call=call, headers=headers, payload=call.payload,
            api=api_for_path(target.path, target.route.provider), send=send, record=record,
            view=record.notes["view"], parent=record.notes.get("trace"), legacy_tee=tee)


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


def _header_text(headers: RawHeaders, name: bytes) -> str | None:
    value = get(headers, name)
    return value.decode("latin-1") if value else None


async def send_error(send: Send, error: ProxyError) -> None:
    body = error.body()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if error.close_connection:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
