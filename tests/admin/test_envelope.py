"""Every error of the admin port, from a real `llm-shadow serve`, uses one envelope: the
OpenAI one the proxy port uses, with a string `code`; unknown paths and methods too."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.proxyproc import ProxyProcess, routes_to

pytestmark = pytest.mark.integration
TOKEN = {"authorization": "Bearer adm1n"}


def envelope(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param",
                                                             "code"}
    assert isinstance(body["error"]["code"], str)
    error: dict[str, object] = body["error"]
    return error


def test_every_admin_error_is_the_envelope(upstream_url: str) -> None:
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}}
    with ProxyProcess(config, env={"LLM_SHADOW_ADMIN_TOKEN": "adm1n"}) as proxy:
        admin = proxy.admin_url
        wrong_method = httpx.get(admin + "/flags")
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "PUT"
        assert envelope(wrong_method)["code"] == "method_not_allowed"
        assert envelope(httpx.get(admin + "/nope"))["code"] == "not_found"
        assert envelope(httpx.post(admin + "/feedback", json={}))["code"] == "unauthorized"
        bad = httpx.post(admin + "/feedback", content=b"{", headers=TOKEN)
        assert (bad.status_code, envelope(bad)["code"]) == (400, "invalid_request")
        unknown = httpx.post(admin + "/feedback", headers=TOKEN, json={
            "request_id": "never-answered", "model_name": "m", "was_correct": True})
        assert unknown.status_code == 400  # no such model configured here
        report = httpx.get(admin + "/report", params={"format": "xml"})
        assert (envelope(report)["code"], envelope(report)["param"]) == ("invalid_request",
                                                                        "format")
        store = httpx.put(admin + "/flags", json={"kill": True}, headers=TOKEN)
        assert (store.status_code, envelope(store)["code"]) == (503, "store_unavailable")
