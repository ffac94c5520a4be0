"""Counters summed in a dictionary on the request path and reported at collection time.

Layer: adapter helper (OpenTelemetry metrics API, observable counters).

Why: an SDK `Counter.add` validates and hashes its attributes and updates the storage of
every metric reader (OTLP and Prometheus here), about 15-20 µs per call on a small
core, on the event loop. Adding to a dict costs well under a microsecond; the SDK sees
the totals through an observable counter callback when a reader collects (on the
exporter's thread or in a `/metrics` request). The exported data is the same: a
monotonic cumulative sum per attribute set.

Attribute sets are bounded like the SDK's (2000 per counter); beyond that, new sets are
folded into one `otel.metric.overflow=true` series, as the SDK does, so a bug that puts
a high-cardinality value into a key cannot grow memory without bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

Key = tuple[tuple[str, Any], ...]
OVERFLOW: Key = (("otel.metric.overflow", True),)
MAX_SERIES = 2000


class Tally:
    __slots__ = ("_values",)

    def __init__(self, meter: Meter, name: str, unit: str, description: str = ""):
        self._values: dict[Key, float] = {}
        meter.create_observable_counter(name, [self._observe], unit, description)

    def add(self, amount: float, key: Key) -> None:
        values = self._values
        if key not in values and len(values) >= MAX_SERIES:
            key = OVERFLOW
        values[key] = values.get(key, 0) + amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        # list() copies in one step under the GIL, so a concurrent add cannot break it.
        return [Observation(value, dict(key)) for key, value in list(self._values.items())]
