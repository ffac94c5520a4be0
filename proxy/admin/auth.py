"""The admin token check: who may change flags (and, for the orchestrator, send
feedback) through the admin port.

Layer: pure core (no web framework): callers pass the `Authorization` header value and
render the outcome. Rules:

- With no token configured (`LLM_SHADOW_ADMIN_TOKEN` unset) every mutating request is
  refused (403): an admin port must never be writable by default, even on loopback.
- Otherwise the request needs `Authorization: Bearer <token>`; anything else is 401.
- The comparison is constant-time (`hmac.compare_digest` on bytes), so response timing
  does not reveal how much of a guess was right.
- Neither the token nor the presented value ever appears in a message or a log.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class AuthOutcome:
    ok: bool
    status: int = 200
    message: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """Headers for the refusal (RFC 6750 asks for a challenge on 401)."""
        return {"www-authenticate": "Bearer"} if self.status == 401 else {}


ALLOWED = AuthOutcome(True)
DISABLED = AuthOutcome(False, 403, "mutating admin endpoints are disabled: no admin token "
                                   "is configured (set LLM_SHADOW_ADMIN_TOKEN)")
MISSING = AuthOutcome(False, 401, "this endpoint requires 'Authorization: Bearer <token>'")
WRONG = AuthOutcome(False, 401, "invalid admin token")


class AdminAuth:
    def __init__(self, token: SecretStr | None):
        value = token.get_secret_value() if token is not None else ""
        self._token = value.encode() if value else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check(self, authorization: str | None) -> AuthOutcome:
        """Whether a request carrying this `Authorization` header may mutate."""
        if self._token is None:
            return DISABLED
        scheme, _, presented = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return MISSING
        if hmac.compare_digest(presented.strip().encode(), self._token):
            return ALLOWED
        return WRONG
