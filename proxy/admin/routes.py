"""The admin port: health, readiness, and (added by their concerns) flags, reports and
metrics. Never reachable on the proxy port.

Layer: composition (Starlette). Mutating endpoints require the admin token. Every error
body is the OpenAI envelope (`proxy.admin.envelope`), unknown paths and methods included.
`/readyz` stays 200 while the legacy path can serve; its `warnings` say what the
orchestrator cannot do (models whose API key variable is unset are never selected).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from proxy.admin import flag_routes as flags_admin
from proxy.admin import orchestrator_routes as orchestrator_admin
from proxy.admin.envelope import EXCEPTION_HANDLERS
from proxy.runtime import Runtime
from proxy.telemetry import scrape


def create_admin_app(runtime: Runtime) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        warnings = readiness_warnings(runtime)
        if runtime.ready and not runtime.draining:
            return JSONResponse({"status": "ready", **warnings})
        state = "draining" if runtime.draining else "starting"
        return JSONResponse({"status": state, **warnings}, status_code=503)

    async def statz(request: Request) -> JSONResponse:
        return JSONResponse(runtime.stats())

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/statz", statz),  # pools, in-flight shadows, skips by reason
        *flags_admin.routes(runtime.flag_service),  # /flagz, PUT /flags, POST /rollback
        *scrape.routes(runtime.telemetry),  # /metrics (Prometheus)
    ]
    if runtime.pipeline is not None:  # POST /feedback, GET /report
        routes += orchestrator_admin.routes(runtime.pipeline, runtime.flag_service.auth)
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)


def readiness_warnings(runtime: Runtime) -> dict[str, object]:
    """What `/readyz` adds while the proxy is ready: models left out of selection."""
    pipeline = runtime.pipeline
    missing = pipeline.missing_keys if pipeline is not None else {}
    if not missing:
        return {}
    return {"warnings": [f"model {name} is not selected: its API key variable {variable} "
                         f"is not set" for name, variable in sorted(missing.items())],
            "models_without_key": dict(sorted(missing.items()))}
