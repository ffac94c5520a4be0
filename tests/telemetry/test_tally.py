"""Dict-summed counters reported through observable counters: same totals as an SDK
counter, bounded series."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from proxy.telemetry import tally
from proxy.telemetry.tally import Tally


def collect(reader: InMemoryMetricReader) -> dict[tuple[tuple[str, object], ...], float]:
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert metric.data.is_monotonic
    return {tuple(sorted(p.attributes.items())): p.value for p in metric.data.data_points}


def test_totals_per_attribute_set() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("t")
    counter = Tally(meter, "c", "{x}")
    counter.add(1, (("reason", "budget"),))
    counter.add(2, (("reason", "budget"),))
    counter.add(0.5, (("reason", "pool_full"), ("route", "/openai")))
    assert collect(reader) == {(("reason", "budget"),): 3,
                               (("reason", "pool_full"), ("route", "/openai")): 0.5}
    counter.add(1, (("reason", "budget"),))
    assert collect(reader)[(("reason", "budget"),)] == 4  # cumulative


def test_series_are_bounded() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("t")
    counter = Tally(meter, "c", "{x}")
    for index in range(tally.MAX_SERIES + 5):
        counter.add(1, (("id", str(index)),))
    totals = collect(reader)
    assert len(totals) == tally.MAX_SERIES + 1
    assert totals[(("otel.metric.overflow", True),)] == 5
