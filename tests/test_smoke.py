"""The pass-through works end to end through a real `llm-shadow serve` process."""

from __future__ import annotations

import httpx

from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.upstream import FakeUpstream


def test_chat_completion_passes_through(passthrough_proxy: ProxyProcess,
                                        upstream: FakeUpstream) -> None:
    response = httpx.post(
        passthrough_proxy.url + "/openai/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Answer to: hi"
    assert upstream.paths() == ["/v1/chat/completions"]
