"""What happened to one proxied request: the record handed to telemetry and comparison
once the client has its answer.

Layer: pure core. Filled in along the request path with plain attribute writes (cheap),
read only after the response is complete, off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Exchange:
    request_id: str
    method: str
    route_prefix: str
    provider: str
    upstream_path: str
    upstream_host: str
    started_at: float
    decision: Any = None
    status: int | None = None
    first_byte_at: float | None = None
    finished_at: float | None = None
    error_type: str | None = None
    completed: bool = False
    aborted: bool = False
    client_gone: bool = False
    request_body: bytes | None = None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response_body: bytes | None = None
    response_truncated: bool = False
    answered_by: str = "legacy"
    fallback_reason: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def time_to_first_byte(self) -> float | None:
        if self.first_byte_at is None:
            return None
        return self.first_byte_at - self.started_at
