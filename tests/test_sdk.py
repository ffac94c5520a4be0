"""The official `openai` and `anthropic` SDKs, sync and async, streaming and not, get the
same results through `llm-shadow serve` as straight from the upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.clients import sdk_client
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.upstream import FakeUpstream

MESSAGES: Any = [{"role": "user", "content": "What is a sidecar?"}]


def _openai(base: str) -> openai.OpenAI:
    return sdk_client(openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0))


def _anthropic(base: str) -> anthropic.Anthropic:
    return sdk_client(anthropic.Anthropic(base_url=base, api_key="sk-ant-test",
                                          max_retries=0))


@pytest.fixture
def bases(passthrough_proxy: ProxyProcess, upstream_url: str,
          upstream: FakeUpstream) -> dict[str, str]:
    return {"direct": upstream_url, "proxy": passthrough_proxy.url}


def test_openai_chat(bases: dict[str, str], upstream: FakeUpstream) -> None:
    direct = _openai(bases["direct"] + "/v1").chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES)
    proxied = _openai(bases["proxy"] + "/openai/v1").chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES)
    assert proxied.model_dump() == direct.model_dump()
    assert upstream.requests[-1].header("authorization") == "Bearer sk-test"


def test_openai_chat_stream_with_usage(bases: dict[str, str]) -> None:
    def collect(base: str) -> tuple[str, Any]:
        stream = _openai(base).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True,
            stream_options={"include_usage": True})
        text, usage = "", None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage:
                usage = chunk.usage.model_dump()
        return text, usage

    assert collect(bases["proxy"] + "/openai/v1") == collect(bases["direct"] + "/v1")
    assert collect(bases["proxy"] + "/openai/v1")[1]["total_tokens"] > 0


def test_openai_async_stream_and_embeddings(bases: dict[str, str]) -> None:
    async def run(base: str) -> tuple[str, list[float]]:
        client = openai.AsyncOpenAI(base_url=base, api_key="sk-test", max_retries=0)
        text = ""
        stream = await client.chat.completions.create(model="m", messages=MESSAGES,
                                                      stream=True)
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        embedding = await client.embeddings.create(model="text-embedding-3-small",
                                                   input="sidecar")
        await client.close()
        return text, embedding.data[0].embedding

    direct = asyncio.run(run(bases["direct"] + "/v1"))
    proxied = asyncio.run(run(bases["proxy"] + "/openai/v1"))
    assert proxied == direct
    assert proxied[0] == "Answer to: What is a sidecar?"


def test_openai_responses_api(bases: dict[str, str]) -> None:
    direct = _openai(bases["direct"] + "/v1").responses.create(model="m", input="hi")
    proxied = _openai(bases["proxy"] + "/openai/v1").responses.create(model="m", input="hi")
    assert proxied.output_text == direct.output_text == "Answer to: hi"


def test_openai_errors_pass_through_untouched(bases: dict[str, str]) -> None:
    client = _openai(bases["proxy"] + "/openai/v1").with_options(
        default_headers={"x-fake-status": "429"})
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.status_code == 429
    assert "fake upstream status 429" in str(caught.value)


def test_proxy_errors_parse_in_the_sdk(bases: dict[str, str]) -> None:
    client = sdk_client(openai.OpenAI(base_url=bases["proxy"] + "/nowhere/v1",
                                      api_key="k", max_retries=0))
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.code == "not_found"


def test_anthropic_messages(bases: dict[str, str], upstream: FakeUpstream) -> None:
    direct = _anthropic(bases["direct"]).messages.create(
        model="claude-test", max_tokens=64, messages=MESSAGES)
    proxied = _anthropic(bases["proxy"] + "/anthropic").messages.create(
        model="claude-test", max_tokens=64, messages=MESSAGES)
    assert proxied.model_dump() == direct.model_dump()
    # This SDK release authenticates with a bearer token; older ones used x-api-key.
    sent = upstream.requests[-1]
    assert "sk-ant-test" in (sent.header("x-api-key") or sent.header("authorization") or "")


def test_anthropic_stream_sync_and_async(bases: dict[str, str]) -> None:
    def sync_text(base: str) -> tuple[str, int]:
        with _anthropic(base).messages.stream(model="claude", max_tokens=64,
                                              messages=MESSAGES) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        return text, final.usage.output_tokens

    async def async_text(base: str) -> str:
        client = anthropic.AsyncAnthropic(base_url=base, api_key="k", max_retries=0)
        async with client.messages.stream(model="claude", max_tokens=64,
                                          messages=MESSAGES) as stream:
            text = "".join([piece async for piece in stream.text_stream])
        await client.close()
        return text

    assert sync_text(bases["proxy"] + "/anthropic") == sync_text(bases["direct"])
    assert asyncio.run(async_text(bases["proxy"] + "/anthropic")) == \
        asyncio.run(async_text(bases["direct"]))


def test_every_response_names_its_request_id_for_the_trace_and_the_report(
        passthrough_proxy: ProxyProcess) -> None:
    """An operator goes from a client's log line to the trace and the report by the
    request id: every response the proxy relays or produces carries it, and a client's
    own sane id is the one used."""
    client = _openai(passthrough_proxy.url + "/openai/v1")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                           messages=MESSAGES)
    generated = raw.headers["x-llm-shadow-request-id"]
    assert generated and raw.headers["x-request-id"] == generated
    mine = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-request-id": "client-42"})
    assert mine.headers["x-llm-shadow-request-id"] == "client-42"
    refused = httpx.get(passthrough_proxy.url + "/nowhere/v1/models",
                        headers={"x-request-id": "client-43"})
    assert refused.status_code == 404
    assert refused.headers["x-llm-shadow-request-id"] == "client-43"
    assert refused.headers["x-request-id"] == "client-43"
