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

from proxy.apis import parse_payload
from proxy.background import stop
from proxy.exchange import Captured, Exchange
from proxy.recording.calls import legacy_call, price, usage_of
from proxy.recording.comparer import Comparer
from proxy.report.entry import RoleCost
from proxy.telemetry.recorder import Telemetry
from proxy.usage.prices import PriceTable

log = logging.getLogger("llm_shadow.recording")


@dataclass(frozen=True)
class Finished:
    exchange: Exchange
    captured: Captured


class ExchangeRecorder:
    def __init__(self, telemetry: Telemetry, prices: PriceTable, comparer: Comparer,
                 queue_size: int = 10_000):
        self.telemetry = telemetry
        self.prices = prices
        self.comparer = comparer
        self.queue: asyncio.Queue[Finished] = asyncio.Queue(queue_size)
        self.dropped = 0
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    def record(self, exchange: Exchange) -> None:
        """Queue a finished legacy answer of a known API for its usage, cost and span;
        when the queue is full it is dropped and counted, never waited for."""
        captured = exchange.legacy_answer()
        if captured is None or exchange.destination.api is None:
            return
        try:
            self.queue.put_nowait(Finished(exchange, captured))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                self._legacy_call(item)
            except Exception:  # recording must never stop: log it and go on
                log.exception("recording request %s failed", item.exchange.request_id)
            finally:
                self.queue.task_done()
            # `get()` does not yield while the queue has items: without this, a backlog
            # would be worked off in one loop step, stalling every request meanwhile.
            await asyncio.sleep(0)

    def _legacy_call(self, item: Finished) -> None:
        exchange, captured = item.exchange, item.captured
        destination = exchange.destination
        payload = parse_payload(exchange.request_body)
        usage = usage_of(destination.api, captured, payload)
        cost = price(self.prices, usage, payload)
        self.telemetry.record_model_call(exchange.trace, legacy_call(
            role="legacy", destination=destination, captured=captured, payload=payload,
            usage=usage, cost_usd=cost, error_type=exchange.error_type,
            content=self.telemetry.captures_content))
        self.comparer.costs(destination.prefix, exchange.request_id,
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
        await stop([self._worker], max(timeout, 0.5))
