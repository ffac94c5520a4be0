"""Token usage of one model call, from a complete body or folded from its SSE stream.

Layer: pure core. The forwarding path feeds a copy of each upstream slice to a
`UsageMeter` (SSE parser + `UsageFolder`) and asks for the `UsageRecord` at the end; a
non-streaming body goes through `usage_from_body`. Nothing here touches the forwarded
bytes (the opt-in usage injection that does is `proxy.inject`).

Counts follow the OpenTelemetry GenAI conventions: `input_tokens` includes cached input
(Anthropic reports it apart, so input = input + cache_read + cache_creation there) and
`output_tokens` includes reasoning tokens. How each provider reports usage in a stream:

- OpenAI chat: usage only with `stream_options.include_usage`, on a final chunk, but some
  compatible servers put it on a chunk with choices, or on every chunk (cumulative or,
  buggily, per chunk). Any non-null `usage` replaces the previous one: last wins, never
  summed. `data: [DONE]` ends the stream.
- OpenAI Responses: `response.completed` / `response.incomplete` / `response.failed`
  carry `response.usage`; there is no `[DONE]`.
- Anthropic: `message_start` carries input and cache tokens and an initial output count;
  each `message_delta` carries the cumulative output (and, from some backends, input and
  cache fields too): the latest wins, the initial count is never added. `message_stop`
  ends the stream.

A stream that ends without its terminal event is `truncated`, with the partial usage it
had (Anthropic: input from `message_start` plus the latest output, never zero).

Estimates (`estimated=True`, no tokenizer and nothing downloaded): tokens = ceil(UTF-8
bytes / 4) of the text. Four bytes per token is OpenAI's rule of thumb for English; a CJK
character (3 bytes) comes out at 0.75 token, close to current tokenizers. Input is
estimated from the request's message texts plus 4 tokens per message; output from the
answer text seen (stream deltas, or the body), and replaces a reported count that is
lower when a stream was cut. Reasoning tokens are invisible, so estimates run low for
reasoning models. Parsing each stream event costs one small `orjson.loads` (a few µs);
`count_text=False` skips the events that only carry text when no estimate is wanted.

The module is over 500 lines because the three wire formats and their quirks are one
concern (usage as it travels on the wire), and splitting it would scatter each
provider's rules over several files.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.apis import Api
from proxy.usage.sse import DEFAULT_MAX_EVENT_BYTES, SSEEvent, SSEParser

MAX_DECODED_BYTES = 64 * 1024 * 1024
BYTES_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one call consumed, as reported (or estimated) and how far to trust it."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = False
    truncated: bool = False
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    error_type: str | None = None

    @property
    def known(self) -> bool:
        return self.input_tokens is not None and self.output_tokens is not None

    @property
    def total_tokens(self) -> int | None:
        if not self.known:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


# --- reading numbers ------------------------------------------------------------------


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _detail(usage: Mapping[str, Any], group: str, key: str) -> int | None:
    details = usage.get(group)
    return _count(details.get(key)) if isinstance(details, Mapping) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


@dataclass(slots=True)
class _Counts:
    """Raw counts as the provider names them; Anthropic's input still excludes cache."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None

    def update(self, other: _Counts, *, keep_max: tuple[str, ...] = ()) -> None:
        """Latest wins, field by field; a field the newer report lacks keeps its value,
        and a `keep_max` field never goes down (a backend that repeats input as 0 on a
        later event does not erase it)."""
        for name in ("input", "output", "cache_read", "cache_creation", "reasoning"):
            value = getattr(other, name)
            if value is None:
                continue
            if name in keep_max:
                value = max(value, getattr(self, name) or 0)
            setattr(self, name, value)


def _counts(api: Api, usage: Mapping[str, Any]) -> _Counts:
    if api == "anthropic_messages":
        return _Counts(_count(usage.get("input_tokens")), _count(usage.get("output_tokens")),
                       _count(usage.get("cache_read_input_tokens")),
                       _count(usage.get("cache_creation_input_tokens")))
    if api == "openai_responses":
        return _Counts(_count(usage.get("input_tokens")), _count(usage.get("output_tokens")),
                       _detail(usage, "input_tokens_details", "cached_tokens"), None,
                       _detail(usage, "output_tokens_details", "reasoning_tokens"))
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    if cached is None:  # DeepSeek-style compatible servers
        cached = _count(usage.get("prompt_cache_hit_tokens"))
    output = 0 if api == "openai_embeddings" else _count(usage.get("completion_tokens"))
    return _Counts(_count(usage.get("prompt_tokens")), output, cached, None,
                   _detail(usage, "completion_tokens_details", "reasoning_tokens"))


def _input_total(api: Api, counts: _Counts) -> int | None:
    if counts.input is None or api != "anthropic_messages":
        return counts.input
    return counts.input + (counts.cache_read or 0) + (counts.cache_creation or 0)


# --- estimates ------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """ceil(UTF-8 bytes / 4); see the module docstring for why this is good enough."""
    return math.ceil(len(text.encode("utf-8", "replace")) / BYTES_PER_TOKEN)


_INPUT_KEYS = ("messages", "input", "system", "instructions", "tools", "prompt", "functions")
_SKIP_KEYS = frozenset({"image_url", "source", "url", "file_data", "image", "input_audio",
                        "audio", "model", "role", "type", "id", "tool_call_id", "cache_control"})
_WALK_LIMIT = 200_000


def estimate_input_tokens(api: Api, request: bytes | Mapping[str, Any] | None) -> int | None:
    """Input tokens from the request body, or None when it cannot be read."""
    payload = _loads(request) if isinstance(request, bytes | bytearray) else request
    if not isinstance(payload, Mapping):
        return None
    total_bytes, items = 0, 0
    for key in _INPUT_KEYS:
        if key in payload:
            total_bytes += _text_bytes(payload[key])[0]
            if key in ("messages", "input") and isinstance(payload[key], list):
                items += len(payload[key])
    if api == "openai_embeddings":
        return max(1, math.ceil(total_bytes / BYTES_PER_TOKEN)) if total_bytes else None
    return math.ceil(total_bytes / BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE * items + 3


def _text_bytes(node: Any) -> tuple[int, int]:
    """UTF-8 bytes of the text leaves (token-id lists count 4 bytes per id), bounded."""
    size, seen, stack = 0, 0, [node]
    while stack and seen < _WALK_LIMIT:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            if not item.startswith("data:"):
                size += _utf8_len(item)
        elif isinstance(item, dict | Mapping):
            stack.extend(v for k, v in item.items() if k not in _SKIP_KEYS)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            size += BYTES_PER_TOKEN
    return size, seen


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def _delta_bytes(delta: Mapping[str, Any], *keys: str) -> int:
    """Bytes of the text fields of one stream delta (the hot path: no generic walk for
    plain strings)."""
    size = 0
    for key in keys:
        value = delta.get(key)
        if isinstance(value, str):
            size += _utf8_len(value)
        elif value:
            size += _text_bytes(value)[0]
    return size


def _output_text_bytes(api: Api, payload: Mapping[str, Any]) -> int:
    """Bytes of the answer in a complete body: the texts and tool-call arguments."""
    if api == "openai_chat":
        parts = [choice.get("message") for choice in payload.get("choices") or []
                 if isinstance(choice, Mapping)]
    elif api == "anthropic_messages":
        parts = [payload.get("content")]
    elif api == "openai_responses":
        parts = [payload.get("output")]
    else:
        return 0
    return _text_bytes(parts)[0]


def _with_estimates(api: Api, counts: _Counts, *, text_bytes: int | None, truncated: bool,
                    request: bytes | Mapping[str, Any] | None) -> tuple[_Counts, bool]:
    estimated = False
    if text_bytes is not None and api != "openai_embeddings":
        guess = math.ceil(text_bytes / BYTES_PER_TOKEN)
        if counts.output is None or (truncated and guess > counts.output):
            counts.output, estimated = guess, True
    if counts.input is None:
        guess_in = estimate_input_tokens(api, request)
        if guess_in is not None:
            counts.input, estimated = guess_in, True
    return counts, estimated


def _record(api: Api, counts: _Counts, *, estimated: bool, truncated: bool,
            model: str | None, response_id: str | None, finish: tuple[str, ...],
            error_type: str | None) -> UsageRecord:
    return UsageRecord(
        input_tokens=_input_total(api, counts), output_tokens=counts.output,
        cache_read_tokens=counts.cache_read, cache_creation_tokens=counts.cache_creation,
        reasoning_tokens=counts.reasoning, estimated=estimated, truncated=truncated,
        response_model=model, response_id=response_id, finish_reasons=finish,
        error_type=error_type,
    )


# --- complete bodies ------------------------------------------------------------------


class Undecodable(ValueError):
    """Why a body could not be decoded: `reason` is `unknown_coding` (br, zstd: not
    readable here), `corrupt` (not valid for its coding, or cut short) or `too_large`
    (a stage decodes past the limit)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode_content(body: bytes, content_encoding: str | None, *,
                   limit: int = MAX_DECODED_BYTES) -> bytes:
    """The body without its content codings (gzip, deflate, stacked, undone last first),
    each stage bounded by `limit`; raises `Undecodable`. `deflate` is zlib-wrapped by
    the standard but sent raw by some servers: the zlib header (0x78) tells them apart."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        elif coding == "deflate":
            wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
        else:
            raise Undecodable("unknown_coding")
        try:
            decoder = zlib.decompressobj(wbits)
            out = decoder.decompress(body, limit + 1)
        except zlib.error:
            raise Undecodable("corrupt") from None
        if len(out) > limit:
            raise Undecodable("too_large")
        if not decoder.eof:  # the compressed stream was cut short
            raise Undecodable("corrupt")
        body = out
    return body


def decode_body(body: bytes, content_encoding: str | None, *,
                limit: int = MAX_DECODED_BYTES) -> bytes | None:
    """The body without its content coding (`decode_content`); None when the coding is
    unknown (br, zstd) or the data is corrupt or too big."""
    try:
        return decode_content(body, content_encoding, limit=limit)
    except Undecodable:
        return None


def finish_reasons(api: Api, payload: Mapping[str, Any]) -> tuple[str, ...]:
    """Finish reasons as the provider spells them (one per choice for OpenAI chat)."""
    if api == "openai_chat":
        choices = [c for c in payload.get("choices") or [] if isinstance(c, Mapping)]
        choices.sort(key=lambda c: _count(c.get("index")) or 0)
        return tuple(r for c in choices if (r := _str(c.get("finish_reason"))))
    if api == "anthropic_messages":
        reason = _str(payload.get("stop_reason"))
        return (reason,) if reason else ()
    if api == "openai_responses":
        status = _str(payload.get("status"))
        details = payload.get("incomplete_details")
        if status == "incomplete" and isinstance(details, Mapping):
            status = _str(details.get("reason")) or status
        return (status,) if status else ()
    return ()


def _error_type(payload: Mapping[str, Any]) -> str | None:
    error = payload.get("error")
    if error is None:
        return None
    if isinstance(error, Mapping):
        return _str(error.get("type")) or _str(error.get("code")) or "error"
    return _str(error)


def usage_from_json(api: Api, payload: Mapping[str, Any], *, truncated: bool = False,
                    request: bytes | Mapping[str, Any] | None = None) -> UsageRecord:
    usage = payload.get("usage")
    counts = _counts(api, usage) if isinstance(usage, Mapping) else _Counts()
    text_bytes = None if counts.output is not None else _output_text_bytes(api, payload)
    counts, estimated = _with_estimates(api, counts, text_bytes=text_bytes,
                                        truncated=truncated, request=request)
    return _record(api, counts, estimated=estimated, truncated=truncated,
                   model=_str(payload.get("model")), response_id=_str(payload.get("id")),
                   finish=finish_reasons(api, payload), error_type=_error_type(payload))


def usage_from_body(api: Api, body: bytes, *, content_encoding: str | None = None,
                    truncated: bool = False,
                    request: bytes | Mapping[str, Any] | None = None) -> UsageRecord:
    """Usage of a non-streaming response; a body that cannot be read gives an input-only
    estimate (from `request`) marked truncated if the body was cut."""
    decoded = decode_body(body, content_encoding)
    payload = _loads(decoded) if decoded is not None else None
    if not isinstance(payload, Mapping):
        counts, estimated = _with_estimates(api, _Counts(), text_bytes=None,
                                            truncated=truncated, request=request)
        return _record(api, counts, estimated=estimated, truncated=truncated, model=None,
                       response_id=None, finish=(), error_type=None)
    return usage_from_json(api, payload, truncated=truncated, request=request)


# --- streams --------------------------------------------------------------------------

# A chat chunk worth parsing when text is not counted: a usage object, a finish reason
# that is not null, or an error.
_CHAT_WANTED = re.compile(rb'"(?:usage|finish_reason)"\s*:\s*[{"]|"error"')
_ANTHROPIC_SKIP = frozenset({"ping", "content_block_stop", "content_block_start"})
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete",
                                 "response.failed"})


class UsageFolder:
    """Folds SSE events of one response into a `UsageRecord`; constant memory."""

    def __init__(self, api: Api, *, count_text: bool = True):
        self.api = api
        self.count_text = count_text
        self.terminal = False
        self.text_bytes = 0
        self._counts = _Counts()
        self._model: str | None = None
        self._id: str | None = None
        self._finish: dict[int, str] = {}
        self._error: str | None = None

    def feed(self, event: SSEEvent) -> None:
        if not event.has_data:
            return
        if self.api == "openai_chat":
            self._chat(event.data)
        elif self.api == "anthropic_messages":
            self._anthropic(event)
        elif self.api == "openai_responses":
            self._responses(event)

    def finish(self, *, request: bytes | Mapping[str, Any] | None = None,
               truncated: bool | None = None) -> UsageRecord:
        """The record so far; `truncated` defaults to "no terminal event was seen"."""
        cut = (not self.terminal) if truncated is None else truncated
        counts = _Counts(self._counts.input, self._counts.output, self._counts.cache_read,
                         self._counts.cache_creation, self._counts.reasoning)
        text = self.text_bytes if self.count_text else None
        counts, estimated = _with_estimates(self.api, counts, text_bytes=text,
                                            truncated=cut, request=request)
        finish = tuple(self._finish[i] for i in sorted(self._finish))
        return _record(self.api, counts, estimated=estimated, truncated=cut,
                       model=self._model, response_id=self._id, finish=finish,
                       error_type=self._error)

    def _identity(self, payload: Mapping[str, Any]) -> None:
        self._model = self._model or _str(payload.get("model"))
        self._id = self._id or _str(payload.get("id"))

    def _chat(self, data: bytes) -> None:
        if data.strip() == b"[DONE]":
            self.terminal = True
            return
        if not self.count_text and self._model is not None and not _CHAT_WANTED.search(data):
            return
        payload = _loads(data)
        if not isinstance(payload, dict):
            return
        self._identity(payload)
        self._error = _error_type(payload) or self._error
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._counts = _counts("openai_chat", usage)
        for choice in payload.get("choices") or ():
            if isinstance(choice, dict):
                self._chat_choice(choice)

    def _chat_choice(self, choice: Mapping[str, Any]) -> None:
        reason = _str(choice.get("finish_reason"))
        if reason:
            self._finish[_count(choice.get("index")) or 0] = reason
        delta = choice.get("delta")
        if self.count_text and isinstance(delta, dict):
            self.text_bytes += _delta_bytes(delta, "content", "reasoning_content", "tool_calls")

    def _anthropic(self, event: SSEEvent) -> None:
        kind = event.event
        if kind in _ANTHROPIC_SKIP or (kind == "content_block_delta" and not self.count_text):
            return
        payload = _loads(event.data)
        if not isinstance(payload, dict):
            return
        kind = kind or str(payload.get("type", ""))
        if kind == "message_start":
            self._anthropic_start(payload.get("message"))
        elif kind == "message_delta":
            self._anthropic_delta(payload)
        elif kind == "content_block_delta" and self.count_text:
            delta = payload.get("delta")
            if isinstance(delta, dict):
                self.text_bytes += _delta_bytes(delta, "text", "partial_json", "thinking")
        elif kind == "message_stop":
            self.terminal = True
        elif kind == "error":
            self._error = _error_type(payload) or "error"

    def _anthropic_start(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        self._identity(message)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._counts.update(_counts("anthropic_messages", usage))

    def _anthropic_delta(self, payload: Mapping[str, Any]) -> None:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            # Cumulative: replaces message_start's initial output count, never adds to it.
            self._counts.update(_counts("anthropic_messages", usage),
                                keep_max=("input", "cache_read", "cache_creation"))
        delta = payload.get("delta")
        if isinstance(delta, dict) and (reason := _str(delta.get("stop_reason"))):
            self._finish[0] = reason

    def _responses(self, event: SSEEvent) -> None:
        kind = event.event
        if kind.endswith(".delta") and not self.count_text:
            return
        payload = _loads(event.data)
        if not isinstance(payload, dict):
            return
        kind = kind or str(payload.get("type", ""))
        response = payload.get("response")
        if isinstance(response, dict):
            self._identity(response)
        if kind in _RESPONSES_TERMINAL and isinstance(response, dict):
            self._responses_final(kind, response)
        elif kind.endswith(".delta") and isinstance(payload.get("delta"), str):
            self.text_bytes += _utf8_len(payload["delta"])
        elif kind == "error":
            self._error = _str(payload.get("code")) or _error_type(payload) or "error"

    def _responses_final(self, kind: str, response: Mapping[str, Any]) -> None:
        self.terminal = True
        usage = response.get("usage")
        if isinstance(usage, dict):
            self._counts.update(_counts("openai_responses", usage))
        for index, reason in enumerate(finish_reasons("openai_responses", response)):
            self._finish[index] = reason
        if kind == "response.failed":
            self._error = _error_type(response) or "response.failed"


class UsageMeter:
    """Bytes in (copies of the forwarded slices), a `UsageRecord` out."""

    def __init__(self, api: Api, *, count_text: bool = True,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self.parser = SSEParser(max_event_bytes=max_event_bytes)
        self.folder = UsageFolder(api, count_text=count_text)

    def feed(self, chunk: bytes) -> None:
        for event in self.parser.feed(chunk):
            self.folder.feed(event)

    def finish(self, *, request: bytes | Mapping[str, Any] | None = None) -> UsageRecord:
        """Call once, at end of stream (complete, aborted or cut)."""
        for event in self.parser.close():
            self.folder.feed(event)
        return self.folder.finish(request=request)
