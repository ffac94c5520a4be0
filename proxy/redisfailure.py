"""The one mapping of redis-py's exceptions (and the socket and timeout errors beneath
them) to this project's failure: `RedisUnavailable`, with a kind and a message.

Layer: adapter (redis-py), beside the client factory `proxy.redisclient`. Every store
raises its own subclass, so each caller keeps catching what it always caught, while the
classification is written once, here:

    RedisUnavailable(kind, message)
    ├── StoreError          proxy.flags.store: flags, audit, hints, heartbeats, ramp keys
    │   └── WriteConflict   proxy.flags.writer (no Redis failure: writers kept racing)
    ├── StoreUnavailable    proxy.orchestrator.learned_store: learned records
    ├── ReportStoreError    proxy.report.aggregate_store: report aggregates
    └── BudgetUnavailable   proxy.shadow.budget: the shadow budget

Kinds, for logs and counters (the message says the rest):

- `auth`: the credentials or the ACL were refused; retrying soon will not help;
- `timeout`: no answer within the budget (a black-holed or overloaded server);
- `connection`: unreachable, including "no sentinel names a primary" and "no cluster
  node answers";
- `failover`: the server answered but is changing hands: a demoted primary
  (`READONLY`), `CLUSTERDOWN`, `TRYAGAIN`, redirections that did not settle
  (`MOVED`/`ASK`), a replica still loading its data. Transient: the next poll retries;
- `error`: anything else (a script error, out of memory, a cross-slot command, a bug).

Every exception class redis-py defines is caught, cluster ones included (`RedisClusterException`
is not a `RedisError`), so no Redis failure escapes a store as a foreign exception; a
meta-test checks each class. Messages carry redis-py's text, which names host and port but
never a password.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Literal

from redis import exceptions as rexc

FailureKind = Literal["auth", "timeout", "connection", "failover", "error"]


class RedisUnavailable(Exception):
    """Redis could not be used for one operation; `kind` says how (see the module
    docstring). The message never contains credentials."""

    def __init__(self, kind: FailureKind, message: str):
        super().__init__(message)
        self.kind: FailureKind = kind


def _defined(*names: str) -> tuple[type[Exception], ...]:
    """The named redis-py classes this version has (older ones lack a few)."""
    found = (getattr(rexc, name, None) for name in names)
    return tuple(c for c in found if isinstance(c, type) and issubclass(c, Exception))


# Every exception class of redis-py, whatever its base, and what lies beneath them.
REDIS_PY_ERRORS: tuple[type[Exception], ...] = tuple(
    value for value in vars(rexc).values()
    if isinstance(value, type) and issubclass(value, Exception)
    and value.__module__ == rexc.__name__)
FOREIGN: tuple[type[Exception], ...] = (*REDIS_PY_ERRORS, OSError, TimeoutError)

_AUTH = _defined("AuthenticationError", "AuthorizationError", "NoPermissionError",
                 "AuthenticationWrongNumberOfArgsError", "ExternalAuthProviderError")
_TIMEOUT: tuple[type[Exception], ...] = (rexc.TimeoutError, TimeoutError)
_FAILOVER = _defined("ReadOnlyError", "ClusterDownError", "TryAgainError", "AskError",
                     "BusyLoadingError", "ClusterError", "SlotNotCoveredError")
_CONNECTION = _defined("ConnectionError", "RedisClusterUnreachableError")


def classify(exc: BaseException) -> FailureKind:
    """The kind of one failure (anything not recognised is `error`)."""
    if isinstance(exc, _AUTH):
        return "auth"
    if isinstance(exc, _TIMEOUT):
        return "timeout"
    if isinstance(exc, _FAILOVER):
        return "failover"
    if isinstance(exc, (*_CONNECTION, OSError)):
        return "connection"
    return "error"


def describe(exc: BaseException, what: str, budget: float | None = None
             ) -> tuple[FailureKind, str]:
    """The kind and the operator's message for a failure of `what`."""
    kind = classify(exc)
    detail = str(exc) or type(exc).__name__
    if kind == "auth":
        return kind, f"{what}: Redis refused the credentials: {detail}"
    if kind == "timeout":
        within = f"within {budget:.2f}s" if budget is not None else "in time"
        return kind, f"{what}: Redis did not answer {within}"
    if kind == "connection":
        return kind, f"{what}: cannot reach Redis: {detail}"
    if kind == "failover":
        return kind, (f"{what}: Redis is failing over, resharding or loading "
                      f"({type(exc).__name__}: {detail})")
    return kind, f"{what}: Redis error ({type(exc).__name__}): {detail}"


@contextlib.asynccontextmanager
async def redis_failures(what: str, into: Callable[[FailureKind, str], RedisUnavailable],
                         *, budget: float | None = None) -> AsyncIterator[None]:
    """Run the block (within `budget` seconds, when given) and turn any Redis failure
    into `into(kind, message)`, chained to the original."""
    try:
        if budget is None:
            yield
        else:
            async with asyncio.timeout(budget):
                yield
    except FOREIGN as exc:
        kind, message = describe(exc, what, budget)
        raise into(kind, message) from exc
