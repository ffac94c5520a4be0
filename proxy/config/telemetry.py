"""The `telemetry` section: what is recorded in traces and metrics.

Layer: pure core. Exporters follow the standard `OTEL_*` environment variables; this
section holds only what those variables do not cover.
"""

from __future__ import annotations

from proxy.config.base import Section


class TelemetrySection(Section):
    capture_message_content: bool = False
