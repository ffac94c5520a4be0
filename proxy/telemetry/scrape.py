"""`GET /metrics` on the admin port: the Prometheus exposition of the proxy's metrics.

Layer: adapter (Starlette route over prometheus_client). The lead mounts
`routes(telemetry)` in the admin app. Collection walks every metric stream and calls the
observable-gauge callbacks, so it runs in the thread pool, never on the event loop that
serves the proxy port. `Accept` chooses between the Prometheus text format and
OpenMetrics, as prometheus_client's own handler does.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.telemetry.recorder import Telemetry


def routes(telemetry: Telemetry) -> list[Route]:
    """`[Route("/metrics")]`, or no route when Prometheus export is off."""
    registry = telemetry.providers.registry
    if registry is None:
        return []

    async def metrics(request: Request) -> Response:
        body, content_type = await run_in_threadpool(
            exposition, registry, request.headers.get("accept"))
        return Response(body, headers={"content-type": content_type})

    return [Route("/metrics", metrics, methods=["GET"], name="metrics")]


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
