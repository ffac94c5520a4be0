"""SDK clients that are closed when the test ends.

An official SDK client keeps its connection pool until it is closed; one left to the
garbage collector closes its socket whenever a collection happens to run, and Python
reports that as a ResourceWarning in whichever later test it falls. `sdk_client()`
registers a client; the autouse fixture in `tests/conftest.py` closes every registered
client after each test.
"""

from __future__ import annotations

from typing import Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)
_open: list[_Closable] = []


def sdk_client(client: C) -> C:
    """The client, closed when the test ends."""
    _open.append(client)
    return client


def close_sdk_clients() -> None:
    while _open:
        _open.pop().close()
