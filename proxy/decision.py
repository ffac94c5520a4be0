"""The traffic decision: legacy, legacy + shadow, or divert, for one request.

Layer: pure core. `decide` is a synchronous function of data (the flag view, the route,
the path, a bucket key): it never awaits, never raises on valid input, never logs
(OpenFeature 1.4.10/1.4.11), so it can be tested exhaustively and costs microseconds.

Buckets. A request's bucket is a basis point 0..9999 from a stable hash (BLAKE2b, the
same in every process and Python version) of the bucket key: the configured header's
value (conversation or tenant id) when present, else the request id. The same key always
lands in the same bucket, on every replica.

What the two percentages mean together (percentages have at most two decimals, so they
are whole basis points: d = divert_percent x 100, s = shadow_percent x 100):

    bucket:   0 ............ d ............ 10000-s ............ 9999
              [ divert band  )                [   shadow band     ]
              divert wins where the two bands overlap

- divert band = [0, d): the orchestrator answers the client (legacy is the fallback).
- shadow band = [10000 - s, 10000) minus the divert band: legacy answers, the
  orchestrator gets a copy.
- So when s + d <= 100 exactly s % are shadowed and d % diverted, disjointly:
  `--shadow 5 --divert 5` shadows 5 % and diverts 5 %, 90 % stay legacy only.
  When s + d > 100 the overlap is diverted: `--shadow 80 --divert 30` diverts 30 %
  and shadows the other 70 %.
- Ramps keep their buckets: raising d only adds buckets to the divert band, raising s
  only adds buckets to the shadow band (minus any now diverted), so a conversation
  that was shadowed at 5 % is still shadowed at 10 %. 0 means none, 100 means all.

Precedence, first match wins (each returns legacy with that reason):
override > not_ready > failsafe > kill (global, then route) > use_orchestrator false >
path not eligible; then migration_mode "full" diverts everything eligible; then the
bands above. A stale view (no confirmed read for a while, but under max_stale) keeps
applying its last-known-good snapshot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from proxy.flags.view import FlagView

BASIS_POINTS = 10_000

Action = Literal["legacy", "shadow", "divert"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one request, and why (the reason goes on the trace and counters)."""

    action: Action
    reason: str
    bucket: int | None = None


def bucket_key(header_value: str | None, request_id: str) -> str:
    """The configured header's value (conversation or tenant id) when the client sent
    one, else the request id: sticky per conversation when possible."""
    return header_value if header_value else request_id


def bucket_of(key: str) -> int:
    """The basis point 0..9999 of a bucket key; stable across processes and versions."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BASIS_POINTS


def basis_points(percent: float) -> int:
    return round(percent * 100)


def band(bucket: int, shadow_bp: int, divert_bp: int) -> Action:
    """Which band a bucket falls in; the layout is described in the module docstring."""
    if bucket < divert_bp:
        return "divert"
    if bucket >= BASIS_POINTS - shadow_bp:
        return "shadow"
    return "legacy"


def decide(
    view: FlagView,
    route_prefix: str,
    upstream_path: str,
    bucket_key: str,
    eligible_paths: Collection[str],
) -> Decision:
    """The decision for one request; see the module docstring for the precedence."""
    blocked = _blocked(view, route_prefix)
    if blocked is None and upstream_path not in eligible_paths:
        blocked = "not_eligible"
    if blocked is not None:
        return Decision("legacy", blocked)
    bucket = bucket_of(bucket_key)
    snapshot = view.snapshot
    if snapshot.system.migration_mode == "full":
        return Decision("divert", "full_migration", bucket)
    shadow, divert = percentages(view, route_prefix)
    action = band(bucket, basis_points(shadow), basis_points(divert))
    return Decision(action, f"{action}_band" if action != "legacy" else "outside_bands", bucket)


def orchestrator_allowed(view: FlagView, route_prefix: str) -> bool:
    """Whether any request of a route may still reach the orchestrator, by the same
    precedence as `decide`: a kill, a rollback, fail-safe or percentages at 0 take it
    away, and the shadows of that route already running are cancelled."""
    if _blocked(view, route_prefix) is not None:
        return False
    if view.snapshot.system.migration_mode == "full":
        return True
    shadow, divert = percentages(view, route_prefix)
    return shadow > 0 or divert > 0


def percentages(view: FlagView, route_prefix: str) -> tuple[float, float]:
    """(shadow, divert) percentages of a route: its override where it has one."""
    snapshot = view.snapshot
    shadow, divert = snapshot.shadow_percent, snapshot.divert_percent
    route = snapshot.route(route_prefix)
    if route is not None:
        shadow = route.shadow_percent if route.shadow_percent is not None else shadow
        divert = route.divert_percent if route.divert_percent is not None else divert
    return shadow, divert


def _blocked(view: FlagView, route_prefix: str) -> str | None:
    """The reason a route's requests must stay legacy before any bucket is looked at."""
    if view.legacy_only:
        return view.state
    snapshot = view.snapshot
    if snapshot.kill:
        return "kill"
    route = snapshot.route(route_prefix)
    if route is not None and route.kill:
        return "route_kill"
    if not snapshot.system.use_orchestrator:
        return "use_orchestrator_off"
    return None
