"""The batch span processor: bounded, never blocks `on_end`, counts every drop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from proxy.config.telemetry import BatchSettings
from proxy.telemetry.batching import BoundedBatchSpanProcessor
from tests.fakes.servers import wait_for


class GatedExporter(SpanExporter):
    """Blocks in `export` until the test opens the gate; records what it exported."""

    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS,
                 raises: bool = False):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.exported: list[str] = []
        self.result = result
        self.raises = raises
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.gate.wait()
        if self.raises:
            raise RuntimeError("https://collector?token=SENTINEL4 exploded")
        self.exported.extend(span.name for span in spans)
        return self.result

    def shutdown(self) -> None:
        self.shut_down = True


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    yield provider


def end_spans(provider: TracerProvider, *names: str) -> None:
    tracer = provider.get_tracer("test")
    for name in names:
        tracer.start_span(name).end()


def test_full_queue_drops_and_counts_without_blocking(provider: TracerProvider) -> None:
    exporter = GatedExporter()
    processor = BoundedBatchSpanProcessor(
        exporter, BatchSettings(max_queue_size=2, schedule_delay_seconds=3600,
                                max_export_batch_size=1))
    provider.add_span_processor(processor)
    end_spans(provider, "a")
    assert exporter.entered.wait(10)  # the worker holds "a" and is stuck in export
    end_spans(provider, "b", "c", "d", "e")  # returns although the exporter is stuck
    assert processor.dropped_queue_full == 2
    exporter.gate.set()
    processor.force_flush()
    wait_for(lambda: exporter.exported == ["a", "b", "c"], message="a, b, c exported")
    processor.shutdown()
    assert exporter.shut_down


def test_failed_exports_are_counted(provider: TracerProvider) -> None:
    exporter = GatedExporter(SpanExportResult.FAILURE)
    exporter.gate.set()
    processor = BoundedBatchSpanProcessor(exporter, BatchSettings(schedule_delay_seconds=3600))
    provider.add_span_processor(processor)
    end_spans(provider, "a", "b", "c")
    processor.force_flush()
    assert processor.dropped_export_failed == 3
    processor.shutdown()


def test_exporter_exception_is_counted_and_logged_without_its_message(
        provider: TracerProvider, caplog: pytest.LogCaptureFixture) -> None:
    exporter = GatedExporter(raises=True)
    exporter.gate.set()
    processor = BoundedBatchSpanProcessor(exporter, BatchSettings(schedule_delay_seconds=3600))
    provider.add_span_processor(processor)
    end_spans(provider, "a", "b")
    with caplog.at_level(logging.WARNING):
        processor.force_flush()
    assert processor.dropped_export_failed == 2
    assert "RuntimeError" in caplog.text and "SENTINEL4" not in caplog.text
    processor.shutdown()


def test_shutdown_exports_what_is_queued(provider: TracerProvider) -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    processor = BoundedBatchSpanProcessor(exporter, BatchSettings(schedule_delay_seconds=3600))
    provider.add_span_processor(processor)
    end_spans(provider, "a", "b")
    processor.shutdown()
    assert exporter.exported == ["a", "b"] and exporter.shut_down
    end_spans(provider, "late")
    assert processor.dropped_queue_full == 1


def test_scheduled_export_without_flush(provider: TracerProvider) -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    processor = BoundedBatchSpanProcessor(exporter, BatchSettings(schedule_delay_seconds=0.01))
    provider.add_span_processor(processor)
    end_spans(provider, "a")
    wait_for(lambda: exporter.exported == ["a"], message="the scheduled export")
    processor.shutdown()


def test_unsampled_spans_are_not_queued() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    exporter = GatedExporter()
    exporter.gate.set()
    processor = BoundedBatchSpanProcessor(exporter, BatchSettings(schedule_delay_seconds=3600))
    provider.add_span_processor(processor)
    end_spans(provider, "a")
    processor.shutdown()
    assert exporter.exported == [] and processor.dropped_queue_full == 0
