"""Building the proxy's own records for in-process tests: a destination, a flag view, a
request's exchange and an orchestrator call, with telemetry that records nothing."""

from __future__ import annotations

import time
from typing import Any

from proxy.config.model import Config
from proxy.config.proxy import Route
from proxy.config.telemetry import read_otel_environment
from proxy.decision import Decision
from proxy.exchange import Exchange
from proxy.flags.snapshot import FlagSnapshot
from proxy.flags.view import FlagView, LocalLayer
from proxy.orchestrator.target import Role, TargetCall
from proxy.redisclient import redis_client
from proxy.routing import Destination, RouteTable
from proxy.shadow.budget import RedisBudget
from proxy.telemetry.recorder import Telemetry
from proxy.telemetry.setup import build_telemetry


def destination(path: bytes = b"/openai/v1/chat/completions", *,
                upstream: str = "https://x.invalid", **route: Any) -> Destination:
    prefix = "/" + path.split(b"/")[1].decode()
    table = RouteTable([Route(prefix=prefix, upstream=upstream, **route)])
    return table.resolve(path, b"")


def flag_view(**snapshot: Any) -> FlagView:
    return FlagView.build(FlagSnapshot.model_validate(snapshot),
                          LocalLayer.from_config(Config()), "ready", "redis", 0.0)


def quiet_telemetry() -> Telemetry:
    """Telemetry with the SDK disabled: every record call works and exports nothing."""
    return build_telemetry(otel=read_otel_environment({"OTEL_SDK_DISABLED": "true"}))


def exchange(where: Destination | None = None, *, decision: Decision | None = None,
             view: FlagView | None = None, telemetry: Telemetry | None = None,
             request_id: str = "r1", method: str = "POST") -> Exchange:
    where = where or destination()
    started = time.monotonic()
    trace = (telemetry or quiet_telemetry()).start_request(method, where.prefix, where.path,
                                                           request_id, started_at=started)
    return Exchange(request_id, method, where, started,
                    decision or Decision("legacy", "outside_bands", 0),
                    view or flag_view(), trace, eligible=where.api is not None)


def target_call(role: Role = "shadow", where: Destination | None = None, *,
                body: bytes = b"{}", payload: Any = None,
                request_id: str = "r1") -> TargetCall:
    return TargetCall(role=role, destination=where or destination(), method="POST",
                      body=body, payload={} if payload is None else payload,
                      request_id=request_id, client_headers=[])


def memory_budget(usd_per_hour: float) -> RedisBudget:
    """The shared shadow budget's own code, on an in-process Redis (`memory://`)."""
    client = redis_client("memory://", connect_timeout=0.5, socket_timeout=0.5)
    return RedisBudget(client, "test", usd_per_hour)
