"""The divert's one time budget (`divert.fallback_after_seconds`) on real sockets: the
built-in pipeline's models accept connections and never answer; the client still gets
legacy's answer within the budget, not after the models' own timeouts one after another
(30 s each by default), and the fallback reason names the budget.

The only time bound asserted is a generous one (15 s against a 1-2 s budget): enough to
prove the budget was used instead of the 30 s model timeout, never a tight one.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.traffic.conftest import Rig, make_config, next_prefix

pytestmark = pytest.mark.integration

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
GENEROUS = 15.0


def test_hanging_models_fall_back_to_legacy_within_the_budget(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    """Model `first` has its own 0.5 s timeout and is tried first; below the quality
    threshold the pipeline adds `second`, whose 30 s timeout the budget caps."""
    legacy, server = legacy_server
    with ModelFleet({"first": ModelBehaviour(hang=True),
                     "second": ModelBehaviour(hang=True)}) as fleet:
        prefix = next_prefix()
        config = make_config(
            server.url, redis_server, prefix,
            models=fleet.entries(first={"timeout_seconds": 0.5, "cost_per_1m_tokens": 0.1},
                                 second={"cost_per_1m_tokens": 10.0}),
            orchestrator={"simple_query_model_count": 1,
                          "enable_early_result_processing": True,
                          "selection": {"seed": 1}, "model_timeout_seconds": 30.0},
            divert={"shadow_legacy": False, "fallback_after_seconds": 2.0},
            feature_flags={"enable_model_selection": False})
        with ProxyProcess(config, env=fleet.keys()) as proxy:
            rig = Rig(proxy, redis_server, prefix, legacy)
            rig.set_flags(divert_percent=100)
            reference = httpx.post(server.url + "/v1/chat/completions", json=BODY).content
            started = time.monotonic()
            response = httpx.post(proxy.url + "/openai/v1/chat/completions", json=BODY,
                                  timeout=60)
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            assert response.content == reference
            assert elapsed < GENEROUS, f"fell back after {elapsed:.1f} s"
            assert rig.statz()["divert"]["fallbacks"] == {"fallback_budget": 1}
            assert [len(model.requests) for model in fleet] == [1, 1], \
                "the second model runs within what the first left of the budget"
            wait_for(lambda: all(r.disconnected for m in fleet for r in m.requests),
                     message="both model calls ended")


def test_a_hanging_built_in_stream_falls_back_within_the_budget(
    redis_server: RedisServer, legacy_server: tuple[FakeUpstream, ThreadedServer],
) -> None:
    legacy, server = legacy_server
    with ModelFleet({"only": ModelBehaviour(hang=True)}) as fleet:
        prefix = next_prefix()
        config = make_config(server.url, redis_server, prefix, models=fleet.entries(),
                             divert={"shadow_legacy": False, "fallback_after_seconds": 1.0})
        with ProxyProcess(config, env=fleet.keys()) as proxy:
            rig = Rig(proxy, redis_server, prefix, legacy)
            rig.set_flags(divert_percent=100)
            started = time.monotonic()
            response = httpx.post(proxy.url + "/openai/v1/chat/completions",
                                  json={**BODY, "stream": True}, timeout=60)
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            assert b"data: [DONE]" in response.content
            assert elapsed < GENEROUS, f"fell back after {elapsed:.1f} s"
            assert rig.statz()["divert"]["fallbacks"] == {"fallback_budget": 1}
