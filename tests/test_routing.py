"""Not an open proxy. The route table is the only thing that chooses where
traffic goes; the pure rules first, then on the wire with a canary listener."""

from __future__ import annotations

import socket

import httpx
import pytest

from proxy.config.proxy import Route
from proxy.errors import RequestRejected
from proxy.routing import RouteTable
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.rawhttp import Canary, exchange, status_of
from tests.fakes.upstream import FakeUpstream

TABLE = RouteTable([
    Route(prefix="/openai", upstream="https://api.openai.com"),
    Route(prefix="/openai-eu", upstream="https://eu.api.openai.com"),
    Route(prefix="/anthropic", upstream="https://api.anthropic.com/base", provider="anthropic"),
])


@pytest.mark.parametrize("raw,query,url", [
    (b"/openai/v1/chat/completions", b"", "https://api.openai.com/v1/chat/completions"),
    (b"/openai-eu/v1/models", b"", "https://eu.api.openai.com/v1/models"),
    (b"/anthropic/v1/messages", b"beta=true", "https://api.anthropic.com/base/v1/messages?beta=true"),
    (b"/openai/v1/a%7Eb", b"k=%7e", "https://api.openai.com/v1/a%7Eb?k=%7e"),
    (b"/openai", b"", "https://api.openai.com/"),
    (b"/openai/v1/chat/completions@evil.example", b"",
     "https://api.openai.com/v1/chat/completions@evil.example"),
])
def test_resolve_builds_the_url_from_the_route_only(raw: bytes, query: bytes, url: str) -> None:
    assert TABLE.resolve(raw, query).url == url


@pytest.mark.parametrize("raw,status", [
    (b"http://169.254.169.254/latest/meta-data/", 400),
    (b"api.openai.com:443", 400),
    (b"//evil.example/x", 400),
    (b"/openai//v1", 400),
    (b"/openai/v1/../admin", 400),
    (b"/openai/./v1", 400),
    (b"/openai/v1/%2e%2e/", 400),
    (b"/openai/v1/%2E%2e/x", 400),
    (b"/openai/v1%2Fchat", 400),
    (b"/openai/v1%5cchat", 400),
    (b"/openai/v1/\\..\\x", 400),
    (b"/openai/v1/%00", 400),
    (b"/openaix/v1", 404),
    (b"/", 404),
    (b"/v1/chat/completions", 404),
])
def test_resolve_refuses_tricks(raw: bytes, status: int) -> None:
    with pytest.raises(RequestRejected) as caught:
        TABLE.resolve(raw, b"")
    assert caught.value.status == status


@pytest.fixture
def canary() -> Canary:
    listener = Canary()
    yield listener
    listener.close()


def test_tricks_cause_no_outbound_connection(passthrough_proxy: ProxyProcess,
                                                   upstream: FakeUpstream,
                                                   canary: Canary) -> None:
    targets = [f"http://127.0.0.1:{canary.port}/x", f"//127.0.0.1:{canary.port}/x",
               "/openai/v1/../../x", "/openai/v1/%2e%2e/x", "/openai/v1%2F..%2Fx"]
    for target in targets:
        payload = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{canary.port}\r\n"
                   "Connection: close\r\n\r\n").encode()
        assert status_of(exchange(passthrough_proxy.port, payload)) in (400, 404), target
    assert canary.connections == 0
    assert upstream.requests == []


def test_host_header_never_chooses_the_authority(passthrough_proxy: ProxyProcess,
                                                    upstream: FakeUpstream,
                                                    upstream_url: str, canary: Canary) -> None:
    payload = (f"GET /openai/v1/chat/completions@127.0.0.1:{canary.port} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{canary.port}\r\nConnection: close\r\n\r\n").encode()
    assert status_of(exchange(passthrough_proxy.port, payload)) == 200
    [received] = upstream.requests
    assert received.header("host") == upstream_url.removeprefix("http://")
    assert canary.connections == 0


def test_redirects_are_returned_not_followed(passthrough_proxy: ProxyProcess,
                                               upstream: FakeUpstream, canary: Canary) -> None:
    response = httpx.get(passthrough_proxy.url + "/openai/v1/models",
                         headers={"x-fake-redirect": f"http://127.0.0.1:{canary.port}/"})
    assert response.status_code == 302
    assert response.headers["location"] == f"http://127.0.0.1:{canary.port}/"
    assert canary.connections == 0


def test_proxy_environment_is_ignored(upstream_url: str, upstream: FakeUpstream,
                                         canary: Canary) -> None:
    """HTTPS_PROXY/HTTP_PROXY pointing anywhere (here: a canary; in a pod, often the
    sidecar itself) must not be used for upstream calls."""
    env = {"HTTP_PROXY": f"http://127.0.0.1:{canary.port}",
           "HTTPS_PROXY": f"http://127.0.0.1:{canary.port}",
           "ALL_PROXY": f"http://127.0.0.1:{canary.port}"}
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config, env=env) as proxy:
        response = httpx.get(proxy.url + "/openai/v1/models")
    assert response.status_code == 200
    assert canary.connections == 0


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_proxy_port_listens_on_loopback_only(passthrough_proxy: ProxyProcess) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(OSError):
        socket.create_connection((address, passthrough_proxy.port), timeout=2).close()
