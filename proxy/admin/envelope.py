"""One error body for every admin endpoint: the OpenAI envelope the proxy port uses.

Layer: composition (Starlette responses). `{"error": {"message", "type", "param",
"code"}}`, with `code` always a string naming the failure (`unauthorized`,
`unknown_request_id`, ...) and `type` the OpenAI-style class of error, so one parser
reads every error of both ports. Starlette's own 404 and 405 (an unknown path, `GET
/flags`) go through `EXCEPTION_HANDLERS` and get the same envelope, with the `Allow`
header of a 405 kept.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import error_body

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 503: "server_error"}
CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 503: "unavailable"}


def admin_error(status: int, message: str, *, code: str | None = None,
                param: str | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
    body = error_body(message, TYPES.get(status, "server_error"),
                      code or CODES.get(status, "admin_error"), param)
    return Response(body, status_code=status, headers=dict(headers or {}),
                    media_type="application/json")


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = ("no such admin endpoint" if exc.status_code == 404 else
               f"method {request.method} not allowed here" if exc.status_code == 405 else
               str(exc.detail))
    return admin_error(exc.status_code, message, headers=exc.headers)


EXCEPTION_HANDLERS = {HTTPException: http_exception}
