"""What happens after a client has its answer: the legacy call's usage, cost and CLIENT
span, and its cost in the report, worked out in one background worker.

Layer: composition (background). `record` is what the request path calls: it appends to
a bounded queue and returns; when the queue is full the record is dropped and counted,
never waited for. Parsing usage from the teed answer (JSON or SSE) happens here, off the
request path.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from proxy.exchange import Exchange
from proxy.recording.calls import legacy_call, parse_payload, price, usage_of
from proxy.recording.comparer import Comparer
from proxy.report.entry import RoleCost
from proxy.shadow.replay import Captured
from proxy.telemetry.recorder import Telemetry
from proxy.usage.meter import api_for_path
from proxy.usage.prices import PriceTable

log = logging.getLogger("llm_shadow.recording")


@dataclass(frozen=True)
class Finished:
    exchange: Exchange
    captured: Captured | None
    port: int | None


def captured_of(record: Exchange) -> Captured | None:
    """The legacy answer as the client got it (the teed copy), when there is one."""
    if record.status is None or record.answered_by != "legacy" or record.response_body is None:
        return None
    finished = record.finished_at if record.finished_at is not None else record.started_at
    return Captured(record.status, record.response_headers, record.response_body,
                    record.response_truncated, record.started_at, record.first_byte_at,
                    finished, completed=record.completed and not record.aborted)


class ExchangeRecorder:
    def __init__(self, telemetry: Telemetry, prices: PriceTable, comparer: Comparer,
                 ports: dict[str, int | None], queue_size: int = 10_000):
        self.telemetry = telemetry
        self.prices = prices
        self.comparer = comparer
        self.ports = ports
        self.queue: asyncio.Queue[Finished] = asyncio.Queue(queue_size)
        self.dropped = 0
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    def record(self, exchange: Exchange) -> None:
        trace = exchange.notes.get("trace")
        if trace is not None:
            self.telemetry.end_request(
                trace, exchange.status, _action(exchange), decision_reason=_reason(exchange),
                bucket=getattr(exchange.decision, "bucket", None),
                answered_by=exchange.answered_by, error_type=exchange.error_type,
                fallback_reason=exchange.fallback_reason,
                shadow_skip_reason=exchange.notes.get("shadow_skip"),
                flag_version=exchange.notes.get("flag_version"),
                flag_state=exchange.notes.get("flag_state"),
                client_gone=exchange.client_gone, ended_at=exchange.finished_at)
        captured = captured_of(exchange)
        if captured is None:
            return
        try:
            self.queue.put_nowait(Finished(exchange, captured,
                                           self.ports.get(exchange.route_prefix)))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self._legacy_call(item)
            except Exception:  # recording must never stop: log it and go on
                log.exception("recording request %s failed", item.exchange.request_id)
            finally:
                self.queue.task_done()

    async def _legacy_call(self, item: Finished) -> None:
        exchange, captured = item.exchange, item.captured
        assert captured is not None
        api = api_for_path(exchange.upstream_path, exchange.provider)
        if api is None:
            return
        payload = parse_payload(exchange.request_body)
        usage = usage_of(api, captured, payload)
        cost = price(self.prices, usage, payload)
        trace = exchange.notes.get("trace")
        self.telemetry.record_model_call(trace, legacy_call(
            role="legacy", route=exchange.route_prefix, path=exchange.upstream_path,
            provider=exchange.provider, host=exchange.upstream_host.split(":")[0],
            port=item.port, captured=captured, payload=payload, usage=usage, cost_usd=cost,
            error_type=exchange.error_type, content=self.telemetry.captures_content))
        self.comparer.costs(exchange.route_prefix, exchange.request_id,
                            (RoleCost("legacy", cost),))

    async def aclose(self, timeout: float = 5.0) -> None:
        """Let the queue drain (bounded), then stop the worker."""
        if self._worker is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.queue.join()
        except TimeoutError:
            log.warning("recording: %d records not written at shutdown", self.queue.qsize())
        self._worker.cancel()


def _action(exchange: Exchange) -> str | None:
    decision: Any = exchange.decision
    return None if decision is None else str(decision.action)


def _reason(exchange: Exchange) -> str | None:
    decision: Any = exchange.decision
    return None if decision is None else str(decision.reason)
