"""GET /flagz, PUT /flags, POST /rollback on the admin port (in-process store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.testclient import TestClient

from proxy.admin import flag_routes as admin
from proxy.config import Settings
from proxy.flags.service import FlagService
from tests.flags.helpers import config

TOKEN = "t0ken-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def build(token: str | None = TOKEN) -> tuple[FlagService, TestClient]:
    settings = Settings(config=config(redis={"url": "memory://"}), source="<test>",
                        base_dir=Path("."), admin_token=SecretStr(token) if token else None)
    service = FlagService(settings)
    return service, TestClient(Starlette(routes=admin.routes(service)))


@pytest.fixture
def client() -> Iterator[TestClient]:
    _, test_client = build()
    with test_client:
        yield test_client


def test_flagz_reports_this_replica(client: TestClient) -> None:
    body = client.get("/flagz").json()
    for key in ("version", "state", "shadow_percent", "divert_percent", "kill",
                "age_seconds", "source"):
        assert key in body
    assert (body["state"], body["source"], body["version"], body["age_seconds"]) == \
        ("not_ready", "default", 0, None)
    assert body["decisions"] == {"legacy": {}, "shadow": {}, "divert": {}}


def test_put_flags_is_a_validated_partial_update(client: TestClient) -> None:
    first = client.put("/flags", json={"shadow_percent": 10, "reason": "ramp"}, headers=AUTH)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = client.put("/flags", json={"feature_flags": {"enable_validation": False}},
                        headers=AUTH)
    snapshot = second.json()["snapshot"]
    assert (snapshot["version"], snapshot["shadow_percent"]) == (2, 10.0)
    assert snapshot["feature_flags"]["enable_validation"] is False
    assert snapshot["updated_by"].startswith("admin@")
    assert snapshot["reason"] is None


@pytest.mark.parametrize("body", [
    {"shadow_percent": 101}, {"divert_percent": "5"}, {"nonsense": 1}, {"version": 9},
    [1, 2], "text"])
def test_put_flags_refuses_invalid_changes_and_writes_nothing(client: TestClient,
                                                              body: object) -> None:
    response = client.put("/flags", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert client.put("/flags", json={"kill": True}, headers=AUTH).json()["version"] == 1


def test_put_flags_refuses_non_json(client: TestClient) -> None:
    response = client.put("/flags", content=b"{", headers=AUTH)
    assert response.status_code == 400 and "not JSON" in response.json()["error"]["message"]


def test_rollback_needs_no_body(client: TestClient) -> None:
    client.put("/flags", json={"divert_percent": 50, "routes": {"/openai": {"shadow_percent": 5}}},
               headers=AUTH)
    response = client.post("/rollback", headers=AUTH)
    snapshot = response.json()["snapshot"]
    assert response.status_code == 200
    assert (snapshot["kill"], snapshot["divert_percent"], snapshot["routes"],
            snapshot["reason"]) == (True, 0.0, {}, "rollback")
    reasoned = client.post("/rollback", json={"reason": "spike"}, headers=AUTH).json()
    assert reasoned["snapshot"]["reason"] == "spike"


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"authorization": "Bearer nope"}, 401), ({"authorization": TOKEN}, 401)])
def test_mutations_need_the_token(client: TestClient, headers: dict[str, str],
                                  status: int) -> None:
    for response in (client.put("/flags", json={"kill": True}, headers=headers),
                     client.post("/rollback", headers=headers)):
        assert response.status_code == status
        assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text
    assert client.get("/flagz").json()["version"] == 0


def test_without_a_configured_token_mutations_are_refused() -> None:
    _, test_client = build(token=None)
    with test_client:
        response = test_client.post("/rollback", headers={"authorization": "Bearer x"})
        assert response.status_code == 403
        assert "LLM_SHADOW_ADMIN_TOKEN" in response.json()["error"]["message"]
        assert test_client.get("/flagz").status_code == 200


def test_flagz_shows_counted_decisions() -> None:
    service, test_client = build()
    from proxy.decision import Decision

    service.counters.record(Decision("legacy", "kill"))
    service.counters.record(Decision("shadow", "shadow_band", 9990))
    with test_client:
        decisions = test_client.get("/flagz").json()["decisions"]
    assert decisions == {"legacy": {"kill": 1}, "shadow": {"shadow_band": 1}, "divert": {}}


def test_store_unavailable_is_503() -> None:
    settings = Settings(config=config(redis={"url": "redis://127.0.0.1:9/0",
                                             "connect_timeout": 0.1, "socket_timeout": 0.1}),
                        source="<test>", base_dir=Path("."), admin_token=SecretStr(TOKEN))
    service = FlagService(settings)
    with TestClient(Starlette(routes=admin.routes(service))) as test_client:
        response = test_client.put("/flags", json={"kill": True}, headers=AUTH)
    assert response.status_code == 503
    assert "unavailable" in response.json()["error"]["message"]


def test_an_actor_in_the_body_is_recorded_with_where_it_came_from(
        client: TestClient) -> None:
    rolled = client.post("/rollback", json={"reason": "spike", "actor": "alice"},
                         headers=AUTH).json()["snapshot"]
    assert rolled["updated_by"] == "alice (admin API from testclient)"
    put = client.put("/flags", json={"shadow_percent": 1, "actor": "bob"},
                     headers=AUTH).json()["snapshot"]
    assert (put["updated_by"], put["shadow_percent"]) == ("bob (admin API from testclient)",
                                                          1.0)
    bad = client.post("/rollback", json={"actor": 7}, headers=AUTH)
    assert bad.status_code == 400 and "actor" in bad.json()["error"]["message"]


def test_errors_use_the_envelope_with_a_string_code(client: TestClient) -> None:
    refused = client.post("/rollback")
    assert refused.json() == {"error": {
        "message": "this endpoint requires 'Authorization: Bearer <token>'",
        "type": "authentication_error", "param": None, "code": "unauthorized"}}
    invalid = client.put("/flags", json={"shadow_percent": 101}, headers=AUTH).json()
    assert (invalid["error"]["type"], invalid["error"]["code"]) == ("invalid_request_error",
                                                                    "invalid_request")
