"""Prompts and completions in traces: absent by default (they may hold personal data),
recorded as `gen_ai.input.messages` / `gen_ai.output.messages` (and
`gen_ai.system_instructions`) in the conventions' JSON schema only when the operator
opts in with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.

The opted-in proxy is a second process (at the default log level), exporting to its own
receiver; it shares the fake upstream, models and Redis with the package's proxy."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e_telemetry.stack import (
    ROUTE_FLAGS,
    SENTINELS,
    Stack,
    anthropic_client,
    chat,
    echo,
    message,
    new_request_id,
    otel_env,
    proxy_config,
)
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer

pytestmark = pytest.mark.integration

WORKFLOW = "invoke_workflow orchestrator"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions")
_canaries = itertools.count()


def canary() -> str:
    """A prompt that can be searched for in every byte exported."""
    return f"tell me about canary{next(_canaries)}zebra"


@pytest.fixture(scope="module")
def capturing(running: Stack, redis_server: RedisServer) -> Iterator[Stack]:
    receiver = OtlpReceiver()
    with ThreadedServer(receiver) as server:
        config = proxy_config(running.upstream_url, redis_server.url, "e2e-content",
                              running.fleet)
        env = otel_env(server.url, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
        with ProxyProcess(config, env) as proxy:
            stack = Stack(proxy, receiver, running.upstream, running.upstream_url,
                          running.fleet)
            stack.flag_version = stack.set_flags({"routes": ROUTE_FLAGS,
                                                  "reason": "e2e content capture"})
            yield stack


def parsed(span_attrs: dict[str, Any], key: str) -> Any:
    value = span_attrs[key]
    assert isinstance(value, str), f"{key} must be a JSON string on spans"
    return json.loads(value)


# --- off by default -----------------------------------------------------------------------


def test_no_prompt_or_completion_is_recorded_by_default(stack: Stack) -> None:
    prompt = canary()
    legacy, _ = chat(stack.url("/openai"), prompt)
    shadow, _ = message(stack.url("/shadow/anthropic"), prompt, stream=True)
    divert, _ = chat(stack.url("/divert/openai"), prompt, stream=True)
    traces = [stack.trace(legacy, expect=["role:legacy"]),
              stack.trace(shadow, expect=["role:legacy", "role:orchestrator", "comparison"]),
              stack.trace(divert, expect=["role:orchestrator", "role:shadow", "comparison"])]
    for trace in traces:
        for span in trace.spans:
            assert not set(CONTENT_KEYS) & set(span.attributes), span.name
            assert all(event.name != "gen_ai.client.inference.operation.details"
                       for event in span.events)
    word = prompt.split()[-1].encode()  # in the prompt and in every answer
    assert not stack.receiver.contains(word)


# --- opted in -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_legacy_call_records_its_messages(capturing: Stack, stream: bool) -> None:
    capturing.reset()
    prompt = canary()
    request_id, _ = chat(capturing.url("/openai"), prompt, stream=stream,
                         include_usage=stream)
    [legacy] = capturing.trace(request_id, expect=["role:legacy"]).role("legacy")
    assert parsed(legacy.attributes, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    assert parsed(legacy.attributes, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": echo(prompt)}],
         "finish_reason": "stop"}]
    assert "gen_ai.system_instructions" not in legacy.attributes


def test_anthropic_legacy_call_records_system_instructions(capturing: Stack) -> None:
    capturing.reset()
    prompt = canary()
    request_id, _ = _anthropic_with_system(capturing, prompt, "Answer in one line.")
    [legacy] = capturing.trace(request_id, expect=["role:legacy"]).role("legacy")
    assert parsed(legacy.attributes, "gen_ai.system_instructions") == [
        {"type": "text", "content": "Answer in one line."}]
    assert parsed(legacy.attributes, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    assert parsed(legacy.attributes, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": echo(prompt)}],
         "finish_reason": "stop"}]  # the conventions' reason, not Anthropic's end_turn


def _anthropic_with_system(stack: Stack, prompt: str, system: str) -> tuple[str, str]:
    request_id = new_request_id("system")
    with anthropic_client(stack.url("/anthropic")) as client:
        reply = client.messages.create(
            model="claude-e2e", max_tokens=64, system=system,
            messages=[{"role": "user", "content": prompt}],
            extra_headers={"x-request-id": request_id})
    return request_id, "".join(getattr(block, "text", "") for block in reply.content)


def test_capture_never_records_credentials(capturing: Stack) -> None:
    capturing.reset()
    request_id, _ = chat(capturing.url("/shadow/openai"), canary())
    capturing.trace(request_id, expect=["role:legacy", "role:orchestrator", "comparison"])
    for secret in SENTINELS:
        assert not capturing.receiver.contains(secret.encode()), secret
        assert secret not in capturing.proxy.log()


def test_orchestrator_and_mirrored_calls_record_their_messages(capturing: Stack) -> None:
    capturing.reset()
    prompt = canary()
    request_id, _ = chat(capturing.url("/divert/openai"), prompt)
    trace = capturing.trace(request_id, expect=["role:orchestrator", "role:shadow",
                                                "comparison"])
    calls = trace.role("orchestrator") + trace.role("shadow")
    for call in calls:
        messages = parsed(call.attributes, "gen_ai.input.messages")
        assert prompt in json.dumps(messages), call.name
        assert "gen_ai.output.messages" in call.attributes, call.name
