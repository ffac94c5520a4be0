"""A shadowed run end to end, as an operator sees it: `llm-shadow serve` with a fake
legacy upstream and an external fake orchestrator that changes a fact, then `llm-shadow
report` (the console script, in a subprocess) and the spans file.

With content capture opted in and `comparison.keep_examples`, the report lists the
divergent pairs with their evidence (credentials redacted) and the comparison spans
carry the evidence; without the opt-in, neither the report, Redis nor the spans hold a
word of either answer, while the reason is everywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.fakes.cli import llm_shadow
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream
from tests.traffic.conftest import Rig, make_config, next_prefix

pytestmark = pytest.mark.integration

PARIS = "The capital of France is Paris."
SECRET = "sk-live-SENTINEL-314159"
LYON = f"The capital of France is Lyon. Use api_key={SECRET} to check."
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "capital?"}]}


@pytest.fixture(params=[True, False], ids=["capture", "no-capture"])
def rig(request: pytest.FixtureRequest, redis_server: RedisServer,
        legacy_server: tuple[FakeUpstream, ThreadedServer],
        orchestrator_server: tuple[FakeUpstream, ThreadedServer],
        tmp_path: Path) -> Iterator[tuple[Rig, bool, Path]]:
    capture: bool = request.param
    legacy_server[0].default.answer = PARIS
    orchestrator_server[0].default.answer = LYON
    prefix = next_prefix()
    traces = tmp_path / "spans.jsonl"
    config = make_config(legacy_server[1].url, redis_server, prefix,
                         orchestrator={"endpoint": orchestrator_server[1].url},
                         telemetry={"capture_message_content": capture,
                                    "traces_file": str(traces)})
    config["comparison"].update(keep_examples=2)
    with ProxyProcess(config) as proxy:
        yield Rig(proxy, redis_server, prefix, legacy_server[0]), capture, traces


def report(rig: Rig, *args: str) -> Any:
    done = llm_shadow("report", "--config", str(rig.proxy.config_path), "--since", "5m", *args,
                      cwd=rig.proxy.dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "json" in args else done.stdout


def compared(rig: Rig) -> int:
    routes = report(rig, "--format", "json")["routes"]
    return int(routes[0]["compared"]) if routes else 0


def test_divergent_pairs_are_kept_and_shown_only_with_content_capture(
        rig: tuple[Rig, bool, Path]) -> None:
    the_rig, capture, traces = rig
    the_rig.set_flags(shadow_percent=100)
    for _ in range(3):
        response = httpx.post(the_rig.proxy.url + "/openai/v1/chat/completions", json=CHAT,
                              headers={"authorization": "Bearer sk-legacy-key"}, timeout=30)
        assert response.status_code == 200 and "Paris" in response.text
    wait_for(lambda: compared(the_rig) == 3, timeout=30, message="3 comparisons reported")

    data = report(the_rig, "--format", "json")
    [route] = data["routes"]
    assert route["labels"]["major"] == 3
    assert route["reasons"]["major"] == {"fact_changed": 3}
    assert data["bucket_seconds"] == 10  # a 5-minute window reads the fine buckets
    text = report(the_rig)
    assert "by reason       major       fact_changed 3" in text
    assert SECRET not in json.dumps(data) and SECRET not in text

    keys = redis.Redis.from_url(the_rig.redis.url).keys(f"{the_rig.prefix}:report:examples:*")
    if capture:
        pairs = route["examples"]
        assert len(pairs) == 2  # keep_examples 2
        assert pairs[0]["legacy"]["text"] == PARIS
        assert pairs[0]["orchestrator"]["text"].startswith("The capital of France is Lyon.")
        assert "api_key=REDACTED" in pairs[0]["orchestrator"]["text"]
        assert any("Lyon" in item for item in pairs[0]["evidence"])
        assert len(pairs[0]["trace_id"]) == 32
        assert "examples        divergent pairs kept" in text
        assert "    evidence      " in text and "Lyon" in text
        assert [k.decode() for k in keys] == [f"{the_rig.prefix}:report:examples:/openai:major"]
    else:
        assert route["examples"] == [] and keys == []
        assert "Lyon" not in json.dumps(data) and "Lyon" not in text
        assert "pairs are kept only while content capture is on" in text

    wait_for(lambda: len(comparison_spans(traces)) == 3, timeout=30,
             message="3 comparison spans written")
    for span in comparison_spans(traces):
        attributes = span["attributes"]
        assert attributes["llm_shadow.divergence.reason"] == "fact_changed"
        [event] = span["events"]
        explanation = event["attributes"]["gen_ai.evaluation.explanation"]
        if capture:
            assert any("Lyon" in item for item in attributes["llm_shadow.divergence.evidence"])
            assert explanation == "fact_changed" or explanation.startswith("fact_changed: ")
        else:
            assert "llm_shadow.divergence.evidence" not in attributes
            assert explanation == "fact_changed"
    if not capture:
        assert "Lyon" not in traces.read_text()


def comparison_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    spans = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [span for span in spans if span.get("name") == "comparison"]
