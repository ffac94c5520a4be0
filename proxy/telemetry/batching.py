"""A batch span processor that never blocks the request path and counts what it drops.

Layer: adapter (OpenTelemetry SDK span processor).

Why not the SDK's `BatchSpanProcessor`: it drops silently unless an experimental
environment switch is on, and logs a WARNING per dropped span, which under overload
floods the log exactly when it is least wanted. This one does the same work (a bounded
queue filled by `on_end`, one daemon thread exporting batches on a schedule or when a
batch is full) and keeps two counters, `dropped_queue_full` and `dropped_export_failed`,
which the recorder exports as `llm_shadow.telemetry.spans.dropped`. `on_end` is an O(1)
append; the exporter (and its network timeouts) only ever runs on the worker thread or
in `force_flush`/`shutdown`, which the lifecycle calls with a time bound.
"""

from __future__ import annotations

import collections
import logging
import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from proxy.config.telemetry import BatchSettings

log = logging.getLogger("llm_shadow.telemetry")


class BoundedBatchSpanProcessor(SpanProcessor):
    def __init__(self, exporter: SpanExporter, settings: BatchSettings):
        self.exporter = exporter
        self.dropped_queue_full = 0
        self.dropped_export_failed = 0
        self._max_queue = settings.max_queue_size
        self._max_batch = min(settings.max_export_batch_size, settings.max_queue_size)
        self._delay = settings.schedule_delay_seconds
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._stopped = False
        self._worker = threading.Thread(target=self._run, name="llm-shadow-span-export",
                                        daemon=True)
        self._worker.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        if self._stopped or len(self._queue) >= self._max_queue:
            self.dropped_queue_full += 1
            return
        self._queue.append(span)
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now, on the caller's thread (bounded by the
        exporter's own timeout; `Telemetry.close` bounds the whole)."""
        self._export_all()
        return True

    def shutdown(self) -> None:
        self._stopped = True
        self._wake.set()
        self._worker.join()
        self._export_all()
        self.exporter.shutdown()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._export_all()

    def _export_all(self) -> None:
        with self._export_lock:
            while self._queue:
                batch = [self._queue.popleft()
                         for _ in range(min(self._max_batch, len(self._queue)))]
                self._export(batch)

    def _export(self, batch: list[ReadableSpan]) -> None:
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # an exporter bug must not kill the worker thread
            log.warning("span export raised %s; %d spans dropped", type(exc).__name__,
                        len(batch))
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.dropped_export_failed += len(batch)
