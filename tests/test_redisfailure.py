"""The one mapping of redis-py errors: every exception class redis-py defines (cluster and
sentinel ones included) becomes a `RedisUnavailable` of the right kind, and every store
raises its own subclass of it, so callers keep catching what they always caught."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import redis.asyncio.sentinel as async_sentinel
import redis.sentinel as sync_sentinel
from redis import exceptions as rexc

from proxy.flags.store import RedisFlagStore, StoreError, redis_errors
from proxy.flags.writer import WriteConflict
from proxy.orchestrator.learned_store import RedisLearningStore, StoreUnavailable
from proxy.ramp.state_store import RampStore
from proxy.redisclient import redis_client
from proxy.redisfailure import FOREIGN, REDIS_PY_ERRORS, RedisUnavailable, classify, describe
from proxy.report.aggregate_store import ReportStore, ReportStoreError
from proxy.shadow.budget import BudgetUnavailable, RedisBudget
from tests.fakes.servers import free_port


def _classes() -> list[type[BaseException]]:
    found = {c for c in vars(rexc).values()
             if inspect.isclass(c) and issubclass(c, BaseException)
             and c.__module__ == rexc.__name__}
    for module in (sync_sentinel, async_sentinel):
        found |= {c for c in vars(module).values()
                  if inspect.isclass(c) and issubclass(c, BaseException)
                  and c.__module__ == module.__name__}
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def _instance(cls: type[BaseException]) -> BaseException:
    for args in (("3999 127.0.0.1:6381",), ("boom",), ()):
        try:
            return cls(*args)
        except Exception:  # some constructors parse their argument; try the next shape
            continue
    raise AssertionError(f"cannot make a {cls.__name__}")


EXPECTED = {
    "AuthenticationError": "auth", "AuthorizationError": "auth",
    "NoPermissionError": "auth", "AuthenticationWrongNumberOfArgsError": "auth",
    "ExternalAuthProviderError": "auth",
    "TimeoutError": "timeout",
    "ConnectionError": "connection", "MasterNotFoundError": "connection",
    "SlaveNotFoundError": "connection", "MaxConnectionsError": "connection",
    "MaxClientsReachedError": "connection", "RedisClusterUnreachableError": "connection",
    "ReadOnlyError": "failover", "ClusterDownError": "failover", "MasterDownError": "failover",
    "TryAgainError": "failover", "MovedError": "failover", "AskError": "failover",
    "BusyLoadingError": "failover", "ClusterError": "failover",
    "SlotNotCoveredError": "failover",
    "ResponseError": "error", "NoScriptError": "error", "ClusterCrossSlotError": "error",
    "DataError": "error", "OutOfMemoryError": "error", "WatchError": "error",
    "CrossSlotTransactionError": "error", "RedisClusterException": "error",
}


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_redis_py_exception_is_mapped(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    assert isinstance(exc, FOREIGN), f"{cls.__name__} would escape the stores"
    kind = classify(exc)
    assert kind == EXPECTED.get(cls.__name__, kind)

    async def scenario() -> None:
        async with redis_errors(1.0, "read flags"):
            raise exc

    with pytest.raises(StoreError) as caught:
        asyncio.run(scenario())
    assert caught.value.kind == kind and caught.value.__cause__ is exc
    assert str(caught.value).startswith("read flags: ")


def test_the_class_list_covers_the_cluster_and_sentinel_errors() -> None:
    names = {c.__name__ for c in _classes()}
    assert {"MasterNotFoundError", "ClusterDownError", "MovedError", "TryAgainError",
            "ReadOnlyError", "RedisClusterException", "SlotNotCoveredError"} <= names
    assert all(issubclass(c, FOREIGN) for c in REDIS_PY_ERRORS)


@pytest.mark.parametrize(("exc", "kind"), [
    (TimeoutError(), "timeout"), (ConnectionRefusedError(111, "refused"), "connection"),
    (OSError(113, "no route"), "connection"), (ValueError("bug"), "error")])
def test_what_lies_beneath_redis_py(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_messages_say_what_failed_and_how() -> None:
    assert describe(rexc.ConnectionError("Error 111 connecting"), "read flags") == (
        "connection", "read flags: cannot reach Redis: Error 111 connecting")
    assert describe(TimeoutError(), "read flags", 0.5) == (
        "timeout", "read flags: Redis did not answer within 0.50s")
    kind, message = describe(rexc.ReadOnlyError("You can't write against a read only "
                                                "replica."), "write flags")
    assert kind == "failover" and "failing over" in message and "ReadOnlyError" in message
    assert describe(rexc.AuthenticationError("invalid password"), "x")[0] == "auth"


@pytest.mark.parametrize("error", [StoreError, WriteConflict, StoreUnavailable,
                                   ReportStoreError, BudgetUnavailable])
def test_every_store_error_is_one_kind_of_redis_unavailable(error: type[Exception]) -> None:
    assert issubclass(error, RedisUnavailable)


def test_a_budget_breach_is_enforced_inside_the_mapping() -> None:
    async def scenario() -> None:
        async with redis_errors(0.05, "read flags"):
            await asyncio.sleep(5)

    with pytest.raises(StoreError) as caught:
        asyncio.run(scenario())
    assert caught.value.kind == "timeout"


def test_every_store_maps_an_unreachable_redis_to_its_own_error() -> None:
    async def scenario() -> list[tuple[str, str]]:
        client = redis_client(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5,
                              socket_timeout=0.5)
        operations = {
            "flags": RedisFlagStore(client, "t", budget=1.0).read(),
            "ramp": RampStore(client, "t").read_raw(),
            "report": ReportStore(client, "t").report(0.0),
            "budget": RedisBudget(client, "t", 1.0).reserve(0.01),
            "learning": RedisLearningStore("t", client=client).load(),
        }
        seen = []
        for name, operation in operations.items():
            try:
                await operation
            except RedisUnavailable as exc:
                seen.append((name, f"{type(exc).__name__}:{exc.kind}"))
        await client.aclose()
        return seen

    assert asyncio.run(scenario()) == [
        ("flags", "StoreError:connection"), ("ramp", "StoreError:connection"),
        ("report", "ReportStoreError:connection"), ("budget", "BudgetUnavailable:connection"),
        ("learning", "StoreUnavailable:connection")]
