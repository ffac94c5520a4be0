"""Keeping credentials out of telemetry and the report: URLs, header allow-lists, error
codes, and the text and JSON of kept examples.

Layer: pure core (no OpenTelemetry import; the configuration validates against it too).

Everything the recorder writes into a span, event or metric that came from a request
passes through here first. The rules follow the semantic conventions (`url.full` MUST NOT
carry credentials; signature-like query values SHOULD be redacted) and extend them for
LLM APIs, which accept keys in query strings (`?key=` for Gemini, `api-key`, `api_key`).
Redaction is by name *pattern*, not a closed list, because a missed spelling is a leaked
key while an over-redacted value only costs a little debugging comfort.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from proxy.telemetry.names import HTTP_REQUEST_HEADER_PREFIX

REDACTED = "REDACTED"

# Exact names from the semantic conventions' default list, plus the LLM ones.
SENSITIVE_NAMES = frozenset({
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "awsaccesskeyid",
    "signature", "sig", "x-goog-signature", "key", "api-key", "api_key", "apikey", "token",
    "access_token", "id_token", "refresh_token", "code", "password", "authorization",
    "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-goog-api-key",
    "openai-organization", "openai-project", "ocp-apim-subscription-key",
})
# Any name containing one of these is treated as a credential too.
_SENSITIVE_PARTS = ("key", "token", "secret", "passw", "sig", "credential", "auth",
                    "session", "cookie")

# An `error.type` is a low-cardinality code: a provider error code, a class name, or an
# HTTP status. Anything else (a message, a URL, text with spaces) becomes `_OTHER`.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,63}")
OTHER_ERROR = "_OTHER"


def is_sensitive_name(name: str) -> bool:
    """True for a header or query-parameter name that may carry a credential."""
    lowered = name.strip().lower()
    return lowered in SENSITIVE_NAMES or any(part in lowered for part in _SENSITIVE_PARTS)


def redact_query(query: str) -> str:
    """The query string with the value of every credential-like parameter replaced."""
    if not query:
        return query
    parts = []
    for item in query.split("&"):
        name, sep, _value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and is_sensitive_name(name) else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """A URL safe to record: user info replaced, credential-like query values replaced,
    fragment dropped (OAuth-style fragments carry tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}:{REDACTED}@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, redact_query(parts.query), ""))


# Free text: URLs, and `name: value` / `name=value` / `"name": "value"` pairs.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>\"'`]+")
_PAIR = re.compile(r"(?P<name>[A-Za-z_][\w.\-]*)(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
                   r"(?P<value>(?:Bearer|Basic|Token)[ \t]+[^\s\"',;&]+|[^\s\"',;&]+)")


def redact_text(text: str) -> str:
    """Free text (an answer, an evidence item) with credentials redacted by the same
    rules: every URL through `redact_url`, and the value of every `name: value`,
    `name=value` or `"name": "value"` whose name `is_sensitive_name` (a scheme such as
    `Bearer` is redacted with its value)."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    return _PAIR.sub(_redact_pair, text)


def _redact_pair(match: re.Match[str]) -> str:
    if match["value"] == REDACTED or not is_sensitive_name(match["name"].rsplit(".", 1)[-1]):
        return match.group(0)
    return f"{match['name']}{match['sep']}{REDACTED}"


def redact_json(value: Any) -> Any:
    """A JSON value with the value under every credential-like key replaced (whole,
    whatever its type) and every string redacted as text."""
    if isinstance(value, dict):
        return {key: REDACTED if is_sensitive_name(str(key)) else redact_json(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def credentials_in(value: Any) -> set[str]:
    """The values `redact_text` / `redact_json` would replace in `value` (text or JSON):
    to scrub them from anything quoting the same answer apart from their names (a
    comparison's evidence, `Paris → sk-...`)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if is_sensitive_name(str(key)):
                found |= _leaves(item)
            else:
                found |= credentials_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= credentials_in(item)
    elif isinstance(value, str):
        for match in _PAIR.finditer(value):
            if is_sensitive_name(match["name"].rsplit(".", 1)[-1]):
                found.add(match["value"].split()[-1])
        for match in _URL.finditer(value):
            found |= _url_credentials(match.group(0))
    found.discard(REDACTED)
    return found


def _leaves(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_leaves(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_leaves(item) for item in value)) if value else set()
    return {str(value)} if value is not None else set()


def _url_credentials(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found = {part for part in (parts.username, parts.password) if part}
    for item in parts.query.split("&"):
        name, sep, value = item.partition("=")
        if sep and value and is_sensitive_name(name):
            found.add(value)
    return found


def split_path(target: str) -> tuple[str, str]:
    """`(path, redacted query)` from a request target such as `/v1/x?key=...`."""
    path, _sep, query = target.partition("?")
    return path, redact_query(query)


def safe_host(value: str) -> str:
    """A bare host name, even if a caller passed a URL with credentials by mistake."""
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].rsplit("@", 1)[-1]
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.split(":", 1)[0]


def safe_error_type(value: str | None) -> str | None:
    """The value if it looks like an error code, else `_OTHER` (never a message)."""
    if value is None:
        return None
    return value if _ERROR_CODE.fullmatch(value) else OTHER_ERROR


def reason_code(value: str) -> str:
    """The code at the head of a reason that may carry detail after a colon
    (`failed:no valid answer: alpha: error (http_503)` gives `failed`), else `_OTHER`.

    For metric labels and `error.type`: the detail names models and their errors in
    whatever order they finished, so as a label it would open a new series for every
    combination; the span keeps the full reason where it is useful."""
    head = value.split(":", 1)[0]
    return head if _ERROR_CODE.fullmatch(head) else OTHER_ERROR


def header_attributes(headers: Iterable[tuple[bytes, bytes]],
                      allow: frozenset[bytes]) -> dict[str, list[str]]:
    """`http.request.header.<name>` values for allow-listed headers only.

    The allow-list is validated by the configuration, and checked again here, so a
    credential header cannot be recorded even if a caller builds its own list.
    """
    out: dict[str, list[str]] = {}
    if not allow:
        return out
    for name, value in headers:
        if name in allow:
            text = name.decode("latin-1")
            if not is_sensitive_name(text):
                out.setdefault(HTTP_REQUEST_HEADER_PREFIX + text, []).append(
                    value.decode("latin-1"))
    return out
