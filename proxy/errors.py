"""The proxy's own failures, and the error body clients receive for them.

Layer: pure core.

    ProxyError                  a failure of the proxy itself; has a status and a message
    ├── RequestRejected         the client's request cannot be proxied (400, 404, 405, 408,
    │                           413, 431); never shadowed or diverted
    └── UpstreamFailed          the upstream could not be reached or answered badly (502,
        │                       503, 504); a divert falls back to legacy on it
        └── UpstreamTimeout     a timeout, which is reported as 504 and counted separately

Upstream HTTP statuses are not exceptions: a 429 from a provider passes through untouched.
Only these get a body, in the OpenAI error envelope that both SDKs parse.
"""

from __future__ import annotations

import orjson


class ProxyError(Exception):
    status = 500
    code = "proxy_error"
    error_type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        close_connection: bool = False,
    ):
        super().__init__(message)
        self.message = message
        # The request's framing could not be trusted: answer, then close the connection.
        self.close_connection = close_connection
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def body(self) -> bytes:
        return error_body(self.message, self.error_type, self.code)


class RequestRejected(ProxyError):
    status = 400
    code = "invalid_request"
    error_type = "invalid_request_error"


class UpstreamFailed(ProxyError):
    status = 502
    code = "upstream_unreachable"
    error_type = "upstream_error"


class UpstreamTimeout(UpstreamFailed):
    status = 504
    code = "upstream_timeout"


def error_body(message: str, error_type: str, code: str, param: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def not_found(message: str) -> RequestRejected:
    return RequestRejected(message, status=404, code="not_found")


def too_large(limit: int) -> RequestRejected:
    # The unread rest of the body is still on the connection: close it after answering.
    return RequestRejected(
        f"request body exceeds the limit of {limit} bytes", status=413, code="body_too_large",
        close_connection=True,
    )
