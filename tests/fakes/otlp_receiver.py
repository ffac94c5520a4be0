"""A real OTLP receiver for tests: spans and metrics arrive over the wire exactly as they
would at a collector or Jaeger, and are decoded with `opentelemetry-proto` into plain
structures that are easy to assert on.

Two front ends share one store:
- `OtlpReceiver` is an ASGI app for OTLP/HTTP (`POST /v1/traces`, `POST /v1/metrics`,
  protobuf bodies, gzip or deflate when the exporter compresses); run it with
  `ThreadedServer(receiver)` from `tests.fakes.servers`.
- `OtlpGrpcReceiver` is an OTLP/gRPC server (TraceService, MetricsService) on a free
  loopback port, for the gRPC exporter.

Every decoded request body is also kept raw (`bodies`), so a test can prove that a
secret appears nowhere in what was exported, not only nowhere in the fields it checks.
Wait helpers poll with a deadline; tests never sleep and hope.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.fakes.servers import wait_for

KINDS = {Span.SPAN_KIND_UNSPECIFIED: "UNSPECIFIED", Span.SPAN_KIND_INTERNAL: "INTERNAL",
         Span.SPAN_KIND_SERVER: "SERVER", Span.SPAN_KIND_CLIENT: "CLIENT",
         Span.SPAN_KIND_PRODUCER: "PRODUCER", Span.SPAN_KIND_CONSUMER: "CONSUMER"}
STATUS = {Status.STATUS_CODE_UNSET: "UNSET", Status.STATUS_CODE_OK: "OK",
          Status.STATUS_CODE_ERROR: "ERROR"}


@dataclass
class ReceivedEvent:
    name: str
    attributes: dict[str, Any]
    time_unix_nano: int


@dataclass
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[ReceivedEvent]
    status: str
    start_unix_nano: int
    end_unix_nano: int
    resource: dict[str, Any]
    scope: str

    def event(self, name: str) -> ReceivedEvent:
        matches = [event for event in self.events if event.name == name]
        assert matches, f"span {self.name!r} has no event {name!r}: {self.events}"
        return matches[0]


@dataclass
class ReceivedPoint:
    attributes: dict[str, Any]
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)


@dataclass
class ReceivedMetric:
    name: str
    unit: str
    kind: str
    points: list[ReceivedPoint]
    resource: dict[str, Any]


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


def _points(metric: Any) -> tuple[str, list[ReceivedPoint]]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    points = []
    for point in data.data_points:
        received = ReceivedPoint(attributes(point.attributes))
        if kind == "histogram":
            received.count, received.sum = point.count, point.sum
            received.bucket_counts = list(point.bucket_counts)
            received.explicit_bounds = list(point.explicit_bounds)
        else:
            received.value = getattr(point, point.WhichOneof("value"))
        points.append(received)
    return kind, points


class OtlpStore:
    """What the receivers got, decoded; thread-safe (the server runs in its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[ReceivedSpan] = []
        self.metrics: list[ReceivedMetric] = []
        self.bodies: list[bytes] = []
        self.request_headers: list[dict[str, str]] = []

    def reset(self) -> None:
        with self._lock:
            self.spans.clear()
            self.metrics.clear()
            self.bodies.clear()
            self.request_headers.clear()

    def add_traces(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                spans.extend(self._span(span, resource, scope_spans.scope.name)
                             for span in scope_spans.spans)
        with self._lock:
            self.spans.extend(spans)
            self.bodies.append(body)
            self.request_headers.append(headers or {})

    def add_metrics(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
        metrics = []
        for resource_metrics in request.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind, points = _points(metric)
                    metrics.append(ReceivedMetric(metric.name, metric.unit, kind, points,
                                                  resource))
        with self._lock:
            self.metrics.extend(metrics)
            self.bodies.append(body)
            self.request_headers.append(headers or {})

    @staticmethod
    def _span(span: Span, resource: dict[str, Any], scope: str) -> ReceivedSpan:
        return ReceivedSpan(
            name=span.name, kind=KINDS[span.kind], trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex(),
            attributes=attributes(span.attributes),
            events=[ReceivedEvent(event.name, attributes(event.attributes),
                                  event.time_unix_nano) for event in span.events],
            status=STATUS[span.status.code], start_unix_nano=span.start_time_unix_nano,
            end_unix_nano=span.end_time_unix_nano, resource=resource, scope=scope)

    # --- waiting and querying ---

    def wait_for_spans(self, count: int, timeout: float = 15.0,
                       name: str | None = None) -> list[ReceivedSpan]:
        """At least `count` spans (named `name`, if given) have arrived; returns them."""
        def enough() -> list[ReceivedSpan] | None:
            found = self.find_spans(name)
            return found if len(found) >= count else None

        result: list[ReceivedSpan] = wait_for(
            enough, timeout=timeout, message=f"{count} spans{f' named {name!r}' if name else ''}")
        return result

    def find_spans(self, name: str | None = None) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if name is None or span.name == name]

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def wait_for_metric(self, name: str, timeout: float = 15.0) -> ReceivedMetric:
        """The most recent export of metric `name`."""
        result: ReceivedMetric = wait_for(lambda: self.metric(name), timeout=timeout,
                                          message=f"metric {name!r}")
        return result

    def metric(self, name: str) -> ReceivedMetric | None:
        with self._lock:
            found = [metric for metric in self.metrics if metric.name == name]
        return found[-1] if found else None

    def metric_names(self) -> set[str]:
        with self._lock:
            return {metric.name for metric in self.metrics}

    def contains(self, needle: bytes) -> bool:
        """True if `needle` occurs in any raw body received (spans or metrics)."""
        with self._lock:
            return any(needle in body for body in self.bodies)


class OtlpReceiver(OtlpStore):
    """OTLP/HTTP (protobuf) as an ASGI app."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive)
        handler = {"/v1/traces": self.add_traces, "/v1/metrics": self.add_metrics}.get(
            scope["path"])
        if scope["method"] != "POST" or handler is None:
            await _respond(send, 404, b"not found", "text/plain")
            return
        if headers.get("content-type", "").split(";")[0] != "application/x-protobuf":
            await _respond(send, 415, b"protobuf only", "text/plain")
            return
        encoding = headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        handler(body, headers)
        reply = (trace_service_pb2.ExportTraceServiceResponse() if scope["path"] == "/v1/traces"
                 else metrics_service_pb2.ExportMetricsServiceResponse())
        await _respond(send, 200, reply.SerializeToString(), "application/x-protobuf")


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, store: OtlpStore):
        self.store = store

    def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
        metadata = {key: value for key, value in context.invocation_metadata()}
        self.store.add_traces(request.SerializeToString(), metadata)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, store: OtlpStore):
        self.store = store

    def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
        metadata = {key: value for key, value in context.invocation_metadata()}
        self.store.add_metrics(request.SerializeToString(), metadata)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpGrpcReceiver(OtlpStore):
    """OTLP/gRPC on 127.0.0.1, a free port; use as a context manager."""

    def __init__(self) -> None:
        super().__init__()
        import grpc

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self),
                                                                  self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self),
                                                                      self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


__all__ = ["OtlpGrpcReceiver", "OtlpReceiver", "OtlpStore", "ReceivedMetric",
           "ReceivedPoint", "ReceivedSpan"]
