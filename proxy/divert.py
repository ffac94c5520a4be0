"""Divert: the orchestrator answers the client, with legacy as the safety net.

Layer: composition on the request path. The rules (nginx's `proxy_next_upstream`
semantics, with the commit point of `proxy.commit`):

- the orchestrator's attempt has one time budget, `divert.fallback_after_seconds`,
  counted from the start of the divert: model selection, every model call the built-in
  pipeline makes in turn (their own timeouts capped by what is left, `proxy.deadline`),
  validation, and the answer up to the commit point. Past it legacy answers, with the
  fallback reason `fallback_budget`;
- the commit point: a non-streamed answer is read whole (bounded by the route's body
  limit) and checked; a stream, its first body part. Any failure before it (error,
  timeout, an error status, low confidence, failed validation, cost limit, an endpoint
  it cannot answer, an answer cut short, too large or not JSON) falls back to legacy,
  transparently, with the reason recorded; only while `divert.fallback_to_legacy` and
  `legacy_system.enabled` (in `migration_mode: full` with legacy disabled there is no
  legacy call at all, and the client gets a 502);
- once bytes of a stream went out, a failure aborts the client's stream: legacy is never
  spliced onto a partial answer. Every cut stream is counted by reason (`cuts`, the
  `llm_shadow.divert.streams_cut` counter) and named on the request's trace;
- a kill or rollback does not abort diverted answers already streaming (cutting a user's
  answer midway helps nobody); new requests go to legacy at once;
- with `divert.shadow_legacy`, the legacy call then runs as the shadow of the divert, so
  the comparison continues through the canary.

A fallback re-sends a POST to legacy: an orchestrator that failed after its models were
billed costs that money too. The fallback reason is on the trace and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator

from proxy.asgi import Send
from proxy.commit import TOO_LARGE, problem
from proxy.config.shadow import DivertSection
from proxy.deadline import GRACE, Deadline
from proxy.errors import ProxyError, UpstreamTimeout
from proxy.exchange import Captured, Exchange
from proxy.forward import Forwarder, UpstreamAborted
from proxy.headers import client_response_headers, tagged, upstream_request_headers
from proxy.orchestrator.result import OrchestratorAnswer
from proxy.orchestrator.target import OrchestratorFailed, Target, TargetCall, TargetReply
from proxy.recording.calls import endpoint_cost, orchestrator_calls, orchestrator_costs
from proxy.recording.comparer import Comparer, failure_outcome
from proxy.report.entry import RoleCost
from proxy.shadow.runner import ShadowJob, ShadowRunner
from proxy.tee import Tee
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.redaction import reason_code
from proxy.usage.prices import PriceTable

log = logging.getLogger("llm_shadow.divert")

# The fallback reason when the attempt ran out of its time budget.
BUDGET = "fallback_budget"


class Diverter:
    def __init__(self, *, target: Target, legacy: Forwarder, shadow: ShadowRunner,
                 comparer: Comparer, telemetry: Telemetry, settings: DivertSection,
                 prices: PriceTable, tee_bytes: int):
        self.target = target
        self.legacy = legacy
        self.shadow = shadow
        self.comparer = comparer
        self.telemetry = telemetry
        self.settings = settings
        self.prices = prices
        self.tee_bytes = tee_bytes
        # Fallbacks, and diverted streams cut after their first byte went out, by
        # reason (/statz).
        self.fallbacks: Counter[str] = Counter()
        self.cuts: Counter[str] = Counter()

    async def serve(self, call: TargetCall, send: Send, record: Exchange,
                    legacy_tee: Tee | None) -> None:
        """Answer `record`'s client with the orchestrator, or with legacy on a failure
        before the first byte (see the module docstring)."""
        legacy_allowed = self.settings.fallback_to_legacy and \
            record.view.snapshot.legacy_system.enabled
        started = time.monotonic()
        deadline = Deadline.after(self.settings.fallback_after_seconds, started)
        reply, head, failure, answer = await self._open(call, deadline)
        self.telemetry.record_workflow(record.trace, *orchestrator_calls(
            call, answer, start=started, end=time.monotonic(), failure=failure))
        costs = orchestrator_costs(answer)
        if reply is None:
            await self._fall_back(call, send, record, failure or "error", legacy_allowed,
                                  costs, legacy_tee, answer)
            return
        record.answered_by = "orchestrator"
        captured: Captured | None = None
        try:
            captured = await self._relay(reply, head, send, record, started)
        finally:  # the orchestrator's spend counts even when the stream was cut short
            if answer is None and captured is not None:  # external: priced from its usage
                costs = (RoleCost("orchestrator", endpoint_cost(
                    self.prices, call.api, captured, call.payload, 0.0)),)
            self.comparer.outcome(route=call.route, request_id=call.request_id,
                                  outcome="ok", costs=costs, divert=True, answer=answer)
        if self.settings.shadow_legacy and legacy_allowed:
            self.shadow.launch(ShadowJob(call, record.trace, orchestrator_answer=captured,
                                         orchestrator_result=answer))

    async def _open(self, call: TargetCall, deadline: Deadline) -> tuple[
            TargetReply | None, bytes | None, str | None, OrchestratorAnswer | None]:
        """The orchestrator's response up to the commit point (see the module docstring),
        or why there is none."""
        if not self.target.supports(call.api):
            return None, None, "unsupported_endpoint", None
        try:
            async with asyncio.timeout(deadline.remaining(time.monotonic()) + GRACE):
                reply = await self.target.call(call, deadline)
                try:
                    head = await self._head(call, reply)
                except BaseException:
                    await reply.aclose()
                    raise
                return reply, head, None, reply.answer
        except TimeoutError:
            return None, None, BUDGET, None
        except OrchestratorFailed as failed:
            reason = BUDGET if failed.reason == "deadline" else failed.reason
            return None, None, reason, failed.answer
        except (ProxyError, OSError) as exc:
            return None, None, getattr(exc, "code", type(exc).__name__), None
        except Exception:  # any orchestrator fault before the first byte means fallback
            log.exception("divert of %s: the orchestrator failed", call.request_id)
            return None, None, "error", None

    async def _head(self, call: TargetCall, reply: TargetReply) -> bytes:
        """What must be read before committing: a stream's first part, or the whole of a
        non-streamed answer (bounded by the route's body limit, then checked). A failure
        carries the in-process pipeline's answer, so its model calls and their cost are
        recorded with the fallback."""
        try:
            if call.stream:
                return await anext(reply.parts, b"")
            limit = call.destination.route.max_body_bytes
            body = bytearray()
            async for part in reply.parts:
                body += part
                if len(body) > limit:
                    raise OrchestratorFailed(TOO_LARGE, reply.answer)
        except ProxyError as exc:  # headers came, then the body failed
            raise OrchestratorFailed("timeout" if isinstance(exc, UpstreamTimeout)
                                     else "incomplete", reply.answer) from exc
        whole = bytes(body)
        reason = problem(whole, reply.headers, limit=limit, llm_api=call.api is not None)
        if reason is not None:
            raise OrchestratorFailed(reason, reply.answer)
        return whole

    async def _fall_back(self, call: TargetCall, send: Send, record: Exchange, reason: str,
                         legacy_allowed: bool, costs: tuple[RoleCost, ...],
                         tee: Tee | None, answer: OrchestratorAnswer | None = None) -> None:
        prefix = call.route
        record.fallback_reason = reason
        self.fallbacks[reason_code(reason)] += 1
        self.telemetry.count_divert_fallback(reason, prefix)
        self.comparer.outcome(route=prefix, request_id=call.request_id,
                              outcome=failure_outcome(reason), costs=costs, divert=True,
                              fallback=legacy_allowed, answer=answer)
        if not legacy_allowed:
            record.answered_by = "none"
            raise ProxyError(f"the orchestrator could not answer ({reason_code(reason)}) and "
                             "the legacy fallback is disabled", status=502,
                             code="orchestrator_failed")
        log.info("divert of %s fell back to legacy: %s", call.request_id, reason)
        record.answered_by = "legacy"
        await self.legacy.exchange(record, upstream_request_headers(call.client_headers),
                                   call.body, send, tee=tee)

    async def _relay(self, reply: TargetReply, head: bytes | None, send: Send,
                     record: Exchange, started: float) -> Captured:
        tee = Tee(self.tee_bytes)
        headers = tagged(client_response_headers(reply.headers), record.request_id,
                         self.legacy.request_id_header)
        record.status = reply.status
        record.response_headers = headers
        try:
            await send({"type": "http.response.start", "status": reply.status,
                        "headers": headers})
            record.first_byte_at = time.monotonic()
            async for part in _chain(head, reply.parts):
                tee.feed(part)
                await send({"type": "http.response.body", "body": part, "more_body": True})
            record.completed = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ProxyError as exc:
            record.aborted = True
            record.error_type = exc.code
            self._cut(record, "timeout" if isinstance(exc, UpstreamTimeout) else "incomplete")
            raise UpstreamAborted(exc.message) from exc
        finally:
            await reply.aclose()
        return Captured(reply.status, headers, tee.value(), tee.truncated, started,
                        record.first_byte_at, time.monotonic())

    def _cut(self, record: Exchange, reason: str) -> None:
        """A diverted stream the orchestrator failed after bytes went out: it cannot be
        saved, so it is accounted for (trace, counter, /statz; the handler logs it)."""
        record.cut_reason = reason
        self.cuts[reason] += 1
        self.telemetry.count_divert_cut(reason, record.destination.prefix)


async def _chain(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for part in rest:
        yield part
