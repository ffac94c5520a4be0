"""The two ASGI apps of a sidecar, put together from the runtime's resources.

Layer: composition. A newcomer starts here. The proxy port does nothing but proxy: no
health or admin routes (those are on the admin port, `proxy.admin.routes`), no framework
middleware on the hot path. One request goes straight through `ProxyEndpoint`
(`proxy.handler`), whose docstring lists its steps:

    ingress checks → route → decision → legacy | legacy + shadow | divert → record

and every collaborator it calls is named below, with what it is for.
"""

from __future__ import annotations

from proxy.admin.routes import create_admin_app
from proxy.handler import Limits, ProxyEndpoint, Traffic
from proxy.runtime import Runtime


def create_app(runtime: Runtime) -> ProxyEndpoint:
    """The proxy port's app."""
    config = runtime.settings.config
    return ProxyEndpoint(
        routes=runtime.routes,          # path prefix → one fixed upstream (not an open proxy)
        legacy=runtime.legacy,          # the legacy call, streamed back byte for byte
        traffic=Traffic(
            flags=runtime.flags,            # the live flag view every decision reads
            decisions=runtime.decisions,    # decision counts for /flagz
            shadow=runtime.shadow,          # orchestrator on the side, bounded, own pool
            divert=runtime.diverter,        # orchestrator answers, legacy as the fallback
            shadow_settings=config.shadow,  # bounded copies kept for comparison
            inject_usage_routes=config.comparison.inject_stream_usage_routes,
        ),
        telemetry=runtime.telemetry,    # the request's trace: opened and closed here
        recorder=runtime.recorder,      # usage, cost and spans, off the request path
        limits=Limits(
            body_read_timeout=config.proxy.body_read_timeout,
            request_id_header=config.proxy.request_id_header.lower().encode(),
            task_hint_header=config.orchestrator.task_hint_header.encode(),
            max_header_bytes=config.proxy.max_header_bytes,
        ),
        load=runtime.load,              # requests in flight, for /statz
    )


__all__ = ["create_admin_app", "create_app"]
