"""Usage from streamed answers, as it reaches the collector on the legacy CLIENT span.

Every streamed-usage case of the wire facts is unit-tested on the parser
(`tests/test_usage.py`); here the whole path runs: the teed SSE bytes of a real stream,
folded off the request path, recorded and exported."""

from __future__ import annotations

import openai
import pytest

from tests.e2e_telemetry.stack import Stack, chat, echo, message, new_request_id

pytestmark = pytest.mark.integration

PROMPT = "how are tokens counted in a stream"
INPUT_TOKENS = len(PROMPT.split()) + 7  # the fake upstream's rule
OUTPUT_TOKENS = len(echo(PROMPT).split())


def test_openai_stream_with_include_usage(stack: Stack) -> None:
    """The usage chunk before [DONE] is the call's usage, exactly."""
    request_id, _ = chat(stack.url("/openai"), PROMPT, stream=True, include_usage=True)
    [legacy] = stack.trace(request_id, expect=["role:legacy"]).role("legacy")
    attrs = legacy.attributes
    assert attrs["gen_ai.usage.input_tokens"] == INPUT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert "llm_shadow.usage.estimated" not in attrs
    assert "llm_shadow.stream.truncated" not in attrs
    assert attrs["gen_ai.request.stream"] is True


def test_anthropic_stream(stack: Stack) -> None:
    """Input (and cache) tokens from `message_start`; output from the cumulative
    `message_delta`, without adding `message_start`'s initial output count of 1."""
    request_id, _ = message(stack.url("/anthropic"), PROMPT, stream=True)
    [legacy] = stack.trace(request_id, expect=["role:legacy"]).role("legacy")
    attrs = legacy.attributes
    assert attrs["gen_ai.usage.input_tokens"] == INPUT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 0
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 0
    assert "llm_shadow.usage.estimated" not in attrs
    assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]


def test_openai_stream_without_usage_is_estimated(stack: Stack) -> None:
    """No `include_usage`: the proxy does not alter the client's stream (no opt-in), so
    the counts are estimated, and the span says so."""
    request_id, text = chat(stack.url("/openai"), PROMPT, stream=True)
    assert text == echo(PROMPT)
    assert b"include_usage" not in stack.upstream.requests[-1].body  # nothing injected
    [legacy] = stack.trace(request_id, expect=["role:legacy"]).role("legacy")
    attrs = legacy.attributes
    assert attrs["llm_shadow.usage.estimated"] is True
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["llm_shadow.cost.usd"] > 0  # priced from the estimate, marked as such


def test_stream_cut_by_the_upstream_is_marked_truncated(stack: Stack) -> None:
    """A stream the upstream resets mid-way: partial usage, marked truncated."""
    request_id = new_request_id("cut")
    with pytest.raises(openai.APIConnectionError):  # the client sees the stream break
        chat(stack.url("/openai"), PROMPT, stream=True, include_usage=True,
             headers={"x-fake-reset-after": "3"}, request_id=request_id)
    [legacy] = stack.trace(request_id, expect=["role:legacy"]).role("legacy")
    attrs = legacy.attributes
    assert attrs["llm_shadow.stream.truncated"] is True, attrs
    assert attrs["llm_shadow.usage.estimated"] is True
