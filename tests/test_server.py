"""How uvicorn is built (no headers of its own, h11, no proxy headers) and how the
process shuts down (readiness first, streams finish within the budget)."""

from __future__ import annotations

import signal
import socket
import threading

import httpx

from proxy.config import load_config
from proxy.server import uvicorn_config
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import wait_for
from tests.fakes.upstream import FakeUpstream


def test_uvicorn_is_built_for_a_transparent_proxy() -> None:
    settings = load_config(env={})
    config = uvicorn_config(lambda *a: None, "127.0.0.1", 0, settings, 30)
    assert config.http == "h11"  # httptools drops Upgrade: h2c bodies (uvicorn #2722)
    assert config.server_header is False
    assert config.date_header is False
    assert config.proxy_headers is False
    assert config.lifespan == "off"
    assert config.access_log is False
    assert config.timeout_keep_alive >= 60
    assert config.timeout_graceful_shutdown == 30


def test_sigterm_drains_streams_and_drops_readiness_first(upstream: FakeUpstream,
                                                             upstream_url: str) -> None:
    config = {"proxy": {"routes": routes_to(upstream_url), "graceful_shutdown_seconds": 20},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    proxy = ProxyProcess(config).start()
    received: list[bytes] = []

    def stream() -> None:
        with httpx.stream("POST", proxy.url + "/openai/v1/chat/completions", timeout=30,
                          json={"model": "m", "stream": True, "messages": []},
                          headers={"x-fake-chunk-delay-ms": "150",
                                   "x-fake-chunks": "12"}) as response:
            received.extend(response.iter_raw())

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        wait_for(lambda: received, message="stream started")
        proxy.signal(signal.SIGTERM)
        wait_for(lambda: httpx.get(proxy.admin_url + "/readyz").status_code == 503,
                 message="readiness dropped")
        wait_for(lambda: _refused(proxy.port), message="new connections refused")
        reader.join(timeout=30)
        assert b"".join(received).endswith(b"data: [DONE]\n\n")
        assert proxy.process is not None
        assert proxy.process.wait(timeout=30) == 0
    finally:
        proxy.stop()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_the_banner_says_which_listener_is_which_and_that_admin_writes_are_off(
        upstream_url: str) -> None:
    """With no OTEL_* variable nothing is exported: no exporter warnings, and SIGTERM
    ends the process without a telemetry flush to wait for."""
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    proxy = ProxyProcess(config).start()
    assert proxy.stop() == 0
    log = proxy.log()
    assert f"proxy listening on http://127.0.0.1:{proxy.port} (routes /openai, /anthropic)" \
        in log
    assert f"admin listening on http://127.0.0.1:{proxy.admin_port}" in log
    assert "writes (PUT /flags, POST /rollback, POST /feedback) OFF: no " \
           "LLM_SHADOW_ADMIN_TOKEN" in log
    assert "Uvicorn running on" not in log and "Started server process" not in log
    assert "spans not exported" in log
    for noise in ("Traceback", "Failed to export", "telemetry: the shutdown",
                  "llm_shadow.telemetry: WARNING", "opentelemetry"):
        assert noise not in log
    assert log.rstrip().endswith("stopped")


def test_the_banner_says_admin_writes_are_on_with_a_token(upstream_url: str) -> None:
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config, env={"LLM_SHADOW_ADMIN_TOKEN": "t0ken"}) as proxy:
        pass
    assert "POST /feedback) on (Authorization: Bearer $LLM_SHADOW_ADMIN_TOKEN)" in proxy.log()
    assert "t0ken" not in proxy.log()
