"""`POST /feedback` (admin token required, only for requests the orchestrator answered)
and `GET /report` on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from proxy.admin.auth import AdminAuth
from proxy.admin.orchestrator_routes import routes
from proxy.orchestrator.pipeline import Pipeline, build_pipeline
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.servers import ThreadedServer
from tests.orchestrator.conftest import fleet_settings, memory_redis

pytestmark = pytest.mark.integration
TOKEN = {"authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def admin() -> Iterator[tuple[str, str, Pipeline]]:
    with ModelFleet({"qwen-max": ModelBehaviour(), "deepseek-chat": ModelBehaviour()}) as fleet:
        pipeline = build_pipeline(fleet_settings(fleet), memory_redis())
        # What answering these requests records (the pipeline tests answer for real).
        for request_id in ("req-1", "req-9", "req-10", "r"):
            pipeline.learning.answered(request_id, "data_validation",
                                       ["qwen-max", "deepseek-chat"])
        app = Starlette(routes=routes(pipeline, AdminAuth(SecretStr("s3cret"))))
        locked = Starlette(routes=routes(pipeline, AdminAuth(None)))
        with ThreadedServer(app) as server, ThreadedServer(locked) as no_token:
            yield server.url, no_token.url, pipeline
        asyncio.run(pipeline.aclose())


def feedback(request_id: str = "req-1", **extra: object) -> dict[str, object]:
    return {"request_id": request_id, "model_name": "qwen-max",
            "task_type": "data_validation", "was_correct": False, **extra}


def test_feedback_needs_the_admin_token(admin: tuple[str, str, Pipeline]) -> None:
    url, locked, _ = admin
    missing = httpx.post(url + "/feedback", json=feedback())
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(url + "/feedback", json=feedback(),
                       headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    disabled = httpx.post(locked + "/feedback", json=feedback(), headers=TOKEN)
    assert disabled.status_code == 403 and "LLM_SHADOW_ADMIN_TOKEN" in disabled.text


def test_feedback_is_recorded_once_and_shows_in_the_report(
        admin: tuple[str, str, Pipeline]) -> None:
    url, _, pipeline = admin
    first = httpx.post(url + "/feedback", json=feedback("req-9"), headers=TOKEN)
    assert first.status_code == 200
    assert first.json() == {"results": [{"request_id": "req-9", "model_name": "qwen-max",
                                         "result": "recorded"}]}
    again = httpx.post(url + "/feedback", json=[feedback("req-9"), feedback(
        "req-10", model="deepseek-chat", model_name="deepseek-chat", was_correct=True)],
        headers=TOKEN)
    assert [r["result"] for r in again.json()["results"]] == ["duplicate", "recorded"]
    assert pipeline.learning.record("data_validation", "qwen-max").feedback_incorrect == 1
    report = httpx.get(url + "/report", params={"format": "json"}).json()
    row = report["models"]["qwen-max"]["task_types"]["data_validation"]
    assert row["feedback_incorrect"] == 1 and row["feedback_accuracy"] == 0.0
    text = httpx.get(url + "/report")
    assert text.headers["content-type"].startswith("text/plain")
    assert "qwen-max" in text.text and "data_validation" in text.text


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "body must be JSON"),
    (b"[]", "send one feedback object"),
    (b'{"request_id": "r", "model_name": "gpt-99", "task_type": "simple_query", '
     b'"was_correct": true}', "model_name must name a configured model"),
    (b'{"request_id": "r", "model_name": "qwen-max", "task_type": "poetry", '
     b'"was_correct": true}', "task_type must be one of"),
    (b'{"request_id": "r", "model_name": "qwen-max", "task_type": "simple_query", '
     b'"was_correct": "yes"}', "was_correct must be true or false"),
    (b'{"model_name": "qwen-max", "task_type": "simple_query", "was_correct": true}',
     "request_id must be a non-empty string"),
])
def test_bad_feedback_is_refused(admin: tuple[str, str, Pipeline], body: bytes,
                                 message: str) -> None:
    response = httpx.post(admin[0] + "/feedback", content=body, headers=TOKEN)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"request_id": "typo", "model_name": "qwen-max", "was_correct": False}, 404,
     "unknown_request_id"),
    ({"request_id": "req-1", "model_name": "qwen-max", "task_type": "simple_query",
      "was_correct": False}, 400, "task_type_mismatch"),
    ([{"request_id": "req-1", "model_name": "qwen-max", "was_correct": True},
      {"request_id": "typo", "model_name": "qwen-max", "was_correct": False}], 404,
     "unknown_request_id"),
])
def test_feedback_about_an_unknown_request_is_refused_and_changes_nothing(
        admin: tuple[str, str, Pipeline], body: object, status: int, code: str) -> None:
    url, _, pipeline = admin
    before = pipeline.learning.record("data_validation", "qwen-max")
    response = httpx.post(url + "/feedback", json=body, headers=TOKEN)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert pipeline.learning.record("data_validation", "qwen-max") == before


def test_feedback_without_a_task_type_counts_under_the_requests_own(
        admin: tuple[str, str, Pipeline]) -> None:
    url, _, pipeline = admin
    pipeline.learning.answered("req-simple", "simple_query", ["deepseek-chat"])
    response = httpx.post(url + "/feedback", headers=TOKEN, json={
        "request_id": "req-simple", "model_name": "deepseek-chat", "was_correct": True})
    assert response.json()["results"][0]["result"] == "recorded"
    assert pipeline.learning.record("simple_query", "deepseek-chat").feedback_correct == 1
    other = httpx.post(url + "/feedback", headers=TOKEN, json={
        "request_id": "req-simple", "model_name": "qwen-max", "was_correct": True})
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "model_did_not_answer"
    assert "answered by deepseek-chat" in other.json()["error"]["message"]


def test_report_format_is_checked(admin: tuple[str, str, Pipeline]) -> None:
    assert httpx.get(admin[0] + "/report", params={"format": "xml"}).status_code == 400
