"""Admin routes for the live flags: `GET /flagz`, `PUT /flags`, `POST /rollback`.

Layer: composition (Starlette). `GET /flagz` reports this replica's view (what it acts
on now, not what Redis holds); the two mutating routes need the admin bearer token
(`proxy.admin.auth`) and write through the same `FlagWriter` as the CLI, so the validation,
atomic write, audit entry and hint are identical.

    PUT /flags       body: a partial snapshot, e.g. {"shadow_percent": 10, "reason": "ramp"}
                     → 200 {"version", "snapshot"}; 400 invalid; 401/403 auth; 503 store
    POST /rollback   body (optional): {"reason": "...", "actor": "alice"}
                     → 200 {"version", "snapshot"}

Both take an optional `actor` (who, at most 100 characters); the snapshot and the audit
then record `alice (admin API from 10.0.0.7)`, else `admin@10.0.0.7`. Errors use the
envelope of `proxy.admin.envelope`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.admin.envelope import admin_error
from proxy.flags.service import FlagService
from proxy.flags.snapshot import FlagSnapshot, SnapshotInvalid
from proxy.flags.store import StoreError

MAX_BODY_BYTES = 64 * 1024
MAX_ACTOR_CHARS = 100


def routes(service: FlagService) -> list[Route]:
    async def flagz(request: Request) -> Response:
        return JSONResponse(flagz_body(service))

    async def put_flags(request: Request) -> Response:
        return await _mutate(service, request, rollback=False)

    async def rollback(request: Request) -> Response:
        return await _mutate(service, request, rollback=True)

    return [
        Route("/flagz", flagz, methods=["GET"]),
        Route("/flags", put_flags, methods=["PUT"]),
        Route("/rollback", rollback, methods=["POST"]),
    ]


def flagz_body(service: FlagService) -> dict[str, Any]:
    view = service.watcher.current
    snapshot = view.snapshot
    age = view.age(time.monotonic())
    return {
        "replica_id": service.replica_id,
        "version": view.version,
        "state": view.state,
        "source": view.source,
        "shadow_percent": snapshot.shadow_percent,
        "divert_percent": snapshot.divert_percent,
        "kill": snapshot.kill,
        "age_seconds": None if age is None else round(age, 3),
        "detail": view.detail,
        "use_orchestrator": snapshot.system.use_orchestrator,
        "migration_mode": snapshot.system.migration_mode,
        "routes": {prefix: route.model_dump() for prefix, route in snapshot.routes.items()},
        "feature_flags": snapshot.feature_flags.model_dump(),
        "updated_by": snapshot.updated_by,
        "reason": snapshot.reason,
        "updated_at": snapshot.to_dict()["updated_at"],
        "decisions": service.counters.snapshot(),
        "watcher": dict(sorted(service.watcher.stats.items())),
    }


async def _mutate(service: FlagService, request: Request, *, rollback: bool) -> Response:
    outcome = service.auth.check(request.headers.get("authorization"))
    if not outcome.ok:
        return admin_error(outcome.status, outcome.message, headers=outcome.headers)
    try:
        body = await _json_body(request, required=not rollback)
        actor = actor_of(body.pop("actor", None),
                         request.client.host if request.client else "unknown")
        snapshot = await _write(service, body, actor, rollback)
    except SnapshotInvalid as exc:
        return admin_error(400, str(exc))
    except StoreError as exc:
        return admin_error(503, f"flags store unavailable: {exc}", code="store_unavailable")
    return JSONResponse({"version": snapshot.version, "snapshot": snapshot.to_dict()})


def actor_of(given: Any, client: str) -> str:
    """Who made the change: the body's `actor` with where it came from, else the address."""
    if given is None:
        return f"admin@{client}"
    if not isinstance(given, str) or not given.strip() or len(given) > MAX_ACTOR_CHARS:
        raise SnapshotInvalid(f"actor: must be a non-empty string of at most "
                              f"{MAX_ACTOR_CHARS} characters")
    return f"{given.strip()} (admin API from {client})"


async def _write(service: FlagService, body: dict[str, Any], actor: str,
                 rollback: bool) -> FlagSnapshot:
    if rollback:
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise SnapshotInvalid("reason: must be a string")
        return await service.writer.rollback(actor=actor, reason=reason)
    return await service.writer.update(body, actor=actor)


async def _json_body(request: Request, *, required: bool) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise SnapshotInvalid(f"body over {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise SnapshotInvalid("the body must be a JSON object of changes")
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotInvalid(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SnapshotInvalid("the body must be a JSON object of changes")
    return data

