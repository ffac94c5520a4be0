"""The providers one `Telemetry` owns, and flushing/closing them within a time bound.

Layer: adapter (OpenTelemetry SDK providers).

Exporters can hang (a collector that accepts the connection and never answers), and the
SDK's own shutdown waits on them. Shutdown of a sidecar must not: the work runs on a
daemon thread and the caller waits at most `timeout` seconds, then goes on. Spans still
queued at that point are lost, which is the right trade at the end of a pod's life. The
outcome is one log line at most: a WARNING when the flush failed or ran out of time
(with no exporter configured there is nothing to flush, and nothing is said).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from proxy.telemetry.batching import BoundedBatchSpanProcessor

log = logging.getLogger("llm_shadow.telemetry")


@dataclass(frozen=True)
class Providers:
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    processors: tuple[BoundedBatchSpanProcessor, ...] = ()
    registry: CollectorRegistry | None = None

    def drops(self) -> list[tuple[str, int]]:
        """Spans dropped so far, by reason."""
        full = sum(p.dropped_queue_full for p in self.processors)
        failed = sum(p.dropped_export_failed for p in self.processors)
        return [("queue_full", full), ("export_failed", failed)]

    def flush(self, timeout: float) -> bool:
        """Export what is queued and collect metrics now; False if it took too long."""
        millis = int(timeout * 1000)

        def work() -> None:
            if self.tracer_provider is not None:
                self.tracer_provider.force_flush(millis)
            if self.meter_provider is not None:
                self.meter_provider.force_flush(millis)

        return bounded(work, timeout, "flush")

    def shutdown(self, timeout: float) -> bool:
        """Flush and stop every processor, reader and exporter; False on time-out."""
        millis = int(timeout * 1000)

        def work() -> None:
            if self.tracer_provider is not None:
                self.tracer_provider.shutdown()
            if self.meter_provider is not None:
                self.meter_provider.shutdown(millis)

        return bounded(work, timeout, "shutdown")


def bounded(work: Callable[[], None], timeout: float, what: str = "flush") -> bool:
    """Run `work` on a daemon thread; wait at most `timeout` seconds for it. Says once,
    at WARNING, when it failed or did not finish in time."""
    done = threading.Event()
    failed: list[str] = []

    def run() -> None:
        try:
            work()
        except Exception as exc:  # reported, never raised into the lifespan
            failed.append(type(exc).__name__)
        finally:
            done.set()

    threading.Thread(target=run, name="llm-shadow-telemetry-close", daemon=True).start()
    finished = done.wait(timeout)
    if not finished or failed:
        why = f"failed ({failed[0]})" if failed else f"did not finish within {timeout:g}s"
        log.warning("telemetry: the %s of spans and metrics %s (is the collector "
                    "reachable?); what was not exported is dropped", what, why)
    return finished and not failed
