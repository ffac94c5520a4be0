"""Admin routes of the orchestrator: `POST /feedback` and `GET /report`.

Layer: composition (Starlette). Mounted on the admin port by `proxy.admin.routes` (never on the
proxy port). Feedback changes what every replica learns, so it needs the admin bearer
token (`proxy.admin.auth`, the same check as the flag writes); the report is read-only.

    POST /feedback   {"request_id": "...", "model_name": "qwen-max",
                      "task_type": "data_validation", "was_correct": false}
                     (or a list of such objects; "model" is accepted for "model_name";
                     "task_type" may be left out: the request's own is used)
                     → 200 {"results": [{"request_id", "model_name", "result"}]} where
                       result is recorded | duplicate | queued (Redis unreachable: counted
                       here, sent when it is back); 400 invalid; 401/403 auth;
                       404 `unknown_request_id` or `model_did_not_answer`; 503 when the
                       store that could tell is unreachable
    GET /report      ?format=text (default) | json → the performance report

Feedback is all or nothing: every item is checked (it names a request the orchestrator
answered, on any replica, and a model that answered it) before any is counted, so a
typo in a request id can never change a model's reliability. Errors use the envelope of
`proxy.admin.envelope`, with a string `code`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from proxy.admin.auth import AdminAuth
from proxy.admin.envelope import admin_error
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.performance import render_text
from proxy.orchestrator.pipeline import FeedbackRefused, Pipeline

MAX_BODY_BYTES = 256 * 1024
MAX_ITEMS = 1000


REFUSAL_STATUS = {"unknown_request_id": 404, "model_did_not_answer": 404,
                  "store_unavailable": 503}


class BadFeedback(ValueError):
    pass


def routes(pipeline: Pipeline, auth: AdminAuth) -> list[Route]:
    async def feedback(request: Request) -> Response:
        outcome = auth.check(request.headers.get("authorization"))
        if not outcome.ok:
            return admin_error(outcome.status, outcome.message, headers=outcome.headers)
        try:
            items = parse_feedback(await _body(request), pipeline)
            for index, item in enumerate(items):
                item["task_type"] = await _checked(pipeline, item, index)
        except BadFeedback as exc:
            return admin_error(400, str(exc))
        except FeedbackRefused as exc:
            return admin_error(REFUSAL_STATUS.get(exc.code, 400), str(exc), code=exc.code)
        results = []
        for item in items:
            result = await pipeline.learning.feedback(
                item["request_id"], item["model_name"], item["task_type"], item["was_correct"])
            results.append({"request_id": item["request_id"],
                            "model_name": item["model_name"], "result": result.value})
        return JSONResponse({"results": results})

    async def report(request: Request) -> Response:
        output = request.query_params.get("format", "text")
        if output not in ("text", "json"):
            return admin_error(400, "format must be 'text' or 'json'", param="format")
        built = await pipeline.report()
        if output == "json":
            return JSONResponse(built.to_dict())
        return PlainTextResponse(render_text(built))

    return [Route("/feedback", feedback, methods=["POST"]),
            Route("/report", report, methods=["GET"])]


def parse_feedback(body: Any, pipeline: Pipeline) -> list[dict[str, Any]]:
    """Validate one feedback object or a list of them (all or nothing)."""
    raw = body if isinstance(body, list) else [body]
    if not raw or len(raw) > MAX_ITEMS:
        raise BadFeedback(f"send one feedback object or a list of 1 to {MAX_ITEMS}")
    return [_item(entry, index, pipeline) for index, entry in enumerate(raw)]


def _item(entry: Any, index: int, pipeline: Pipeline) -> dict[str, Any]:
    where = f"item {index}: " if index else ""
    if not isinstance(entry, Mapping):
        raise BadFeedback(f"{where}feedback must be a JSON object")
    request_id, model = entry.get("request_id"), entry.get("model_name", entry.get("model"))
    if not isinstance(request_id, str) or not request_id or len(request_id) > 200:
        raise BadFeedback(f"{where}request_id must be a non-empty string")
    if not isinstance(model, str) or model not in pipeline.registry:
        raise BadFeedback(f"{where}model_name must name a configured model")
    given = entry.get("task_type")
    task = TaskType.parse(given) if isinstance(given, str) else None
    if given is not None and task is None:
        raise BadFeedback(f"{where}task_type must be one of "
                          + ", ".join(t.value for t in TaskType) + " (or left out)")
    if not isinstance(entry.get("was_correct"), bool):
        raise BadFeedback(f"{where}was_correct must be true or false")
    return {"request_id": request_id, "model_name": model, "task_type": task,
            "was_correct": entry["was_correct"]}


async def _body(request: Request) -> Any:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise BadFeedback(f"body over {MAX_BODY_BYTES} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadFeedback("body must be JSON") from None


async def _checked(pipeline: Pipeline, item: dict[str, Any], index: int) -> str:
    """The task type the item counts under, or `FeedbackRefused` naming the item."""
    try:
        return await pipeline.check_feedback(item["request_id"], item["model_name"],
                                             item["task_type"])
    except FeedbackRefused as exc:
        raise FeedbackRefused(exc.code, f"item {index}: {exc}" if index else str(exc)) \
            from None
