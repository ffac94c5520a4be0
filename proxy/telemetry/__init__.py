"""Telemetry: OpenTelemetry traces and metrics for every proxied request.

Modules, from the pure core outwards:
    names       every span, event, attribute and metric name (the one place)
    records     ModelCall, Comparison, FlagObservation: what callers hand over
    redaction   URLs, header allow-list and error codes made safe to record
    attributes  attribute sets built from records (pure)
    batching    the bounded, drop-counting batch span processor
    tally       counters summed in a dict, reported at collection (cheap on the loop)
    exporters   OTLP (gRPC, HTTP), console exporters, chosen by `OTEL_*`
    lifecycle   the owned providers, flushed and closed within a bound
    recorder    `Telemetry`: the recording API (start_request, record_model_call, ...)
    setup       `build_telemetry(section, otel)`
    scrape      `routes(telemetry)`: `GET /metrics` for the admin app

This file imports nothing on purpose: the configuration validates against `redaction`
and must not pull in the OpenTelemetry SDK with it. Import from the modules.
"""
