"""The transport adapter: every foreign HTTP failure maps to one of the proxy's own
errors, with a status a careful proxy gives and a message that names only the host."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from proxy.errors import ProxyError, UpstreamTimeout
from proxy.transport import map_exception


def _subclasses(base: type) -> list[type]:
    found = []
    for cls in base.__subclasses__():
        found.append(cls)
        found += _subclasses(cls)
    return found


def _instance(cls: type) -> BaseException:
    if issubclass(cls, httpx.HTTPStatusError):
        request = httpx.Request("GET", "https://host.invalid/?key=SECRET")
        return cls("x", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, aiohttp.ClientResponseError):
        return cls(None, (), status=500)  # type: ignore[arg-type]
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(None, OSError(111, "refused"))  # type: ignore[arg-type]
    try:
        return cls("boom https://host.invalid/?key=SECRET")
    except TypeError:
        return cls()


@pytest.mark.parametrize("cls", _subclasses(httpx.HTTPError) + _subclasses(aiohttp.ClientError),
                         ids=lambda cls: cls.__name__)
def test_every_transport_error_is_mapped(cls: type) -> None:
    try:
        exc = _instance(cls)
    except TypeError:
        pytest.skip(f"{cls.__name__} needs arguments this test cannot make up")
    error = map_exception(exc, "host.invalid")
    assert isinstance(error, ProxyError)
    assert error.status in (502, 503, 504)
    assert "SECRET" not in error.message


@pytest.mark.parametrize("exc", [
    httpx.ReadTimeout("t"), httpx.ConnectTimeout("t"), httpx.WriteTimeout("t"),
    aiohttp.SocketTimeoutError(), aiohttp.ConnectionTimeoutError(),
])
def test_timeouts_are_504(exc: BaseException) -> None:
    assert isinstance(map_exception(exc, "h"), UpstreamTimeout)


def test_pool_timeout_is_503() -> None:
    assert map_exception(httpx.PoolTimeout("t"), "h").status == 503
