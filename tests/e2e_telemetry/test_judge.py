"""The judge end to end: a running `llm-shadow serve` with shadow at 100 % and the judge
on for one route, the official `openai` SDK as the client, a fake judge model on
loopback. The verdict is a second `gen_ai.evaluation.result` event (`llm_shadow.judge`)
in the exported trace, under the comparison; it is counted in `/metrics` and in
`llm-shadow report`; a shadowed route the operator did not list never reaches the
judge's model.

The judging proxy is a process of its own (own receiver, own fleet, own key prefix); it
shares the fake upstream and Redis with the package's proxy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e_telemetry.stack import (
    FLAGS,
    PRICING,
    ROUTE_FLAGS,
    Stack,
    chat,
    message,
    otel_env,
    routes,
)
from tests.fakes.cli import llm_shadow
from tests.fakes.models import ModelBehaviour, ModelFleet, prompt_of, scripted_verdict
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.proxyproc import REPO, ProxyProcess
from tests.fakes.servers import RedisServer, ThreadedServer, wait_for
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration

JUDGED_ROUTE = "/shadow/openai"
PREFIX = "e2e-judge"


def reworded(prompt: str) -> str:
    """The orchestrator's answer: legacy's (`Answer to: ...`) reworded, and asking the
    fake judge for a contradiction (the rules label it `minor`, reason `text_edit`)."""
    return f"Reply to: {prompt} verdict=contradiction"


@dataclass
class JudgeStack:
    stack: Stack
    fleet: ModelFleet
    redis_url: str


@pytest.fixture(scope="module")
def judged(upstream_server: tuple[FakeUpstream, ThreadedServer],
           redis_server: RedisServer) -> Iterator[JudgeStack]:
    upstream, upstream_http = upstream_server
    receiver = OtlpReceiver()
    # Two orchestrator models that agree (one alone stays below the quality threshold).
    behaviours = {"alpha": ModelBehaviour(answer=reworded),
                  "beta": ModelBehaviour(answer=reworded),
                  "judge": ModelBehaviour(answer=scripted_verdict)}
    with ThreadedServer(receiver) as server, ModelFleet(behaviours) as fleet:
        config: dict[str, Any] = {
            "proxy": {"routes": routes(upstream_http.url)},
            "redis": {"url": redis_server.url, "key_prefix": PREFIX}, "flags": FLAGS,
            "models": fleet.entries(beta={"api": "anthropic"},
                                    judge={"enabled": False, "cost_per_1m_tokens": 5.0}),
            "orchestrator": {"selection": {"seed": 7}},
            "shadow": {"timeout_seconds": 20.0},
            "comparison": {"noise_sample_percent": 0.0, "judge": {
                "enabled": True, "model": "judge", "routes": [JUDGED_ROUTE],
                "sample_percent": 100.0, "labels": ["equivalent", "minor", "major"],
                "policy_file": str(REPO / "policies" / "judge.json")}},
            "pricing": PRICING,
        }
        env = otel_env(server.url, **fleet.keys())
        with ProxyProcess(config, env) as proxy:
            stack = Stack(proxy, receiver, upstream, upstream_http.url, fleet)
            stack.flag_version = stack.set_flags({"routes": ROUTE_FLAGS,
                                                  "reason": "e2e judge"})
            yield JudgeStack(stack, fleet, redis_server.url)


def test_the_verdict_is_a_second_evaluation_event_under_the_comparison(
        judged: JudgeStack) -> None:
    stack = judged.stack
    request_id, text = chat(stack.url(JUDGED_ROUTE), "what is a sidecar proxy")
    assert text == "Answer to: what is a sidecar proxy"  # the client got legacy's answer
    trace = stack.trace(request_id, expect=["comparison", "judge", "chat judge"])
    comparison, judge = trace.one("comparison"), trace.one("judge")
    assert comparison.attributes["llm_shadow.divergence.label"] == "minor"
    assert comparison.event("gen_ai.evaluation.result").attributes[
        "gen_ai.evaluation.name"] == "llm_shadow.divergence"
    assert judge.parent_span_id == comparison.span_id
    assert judge.attributes["llm_shadow.judge.verdict"] == "contradiction"
    assert judge.attributes["llm_shadow.judge.agreement"] == "rules_lenient"
    event = judge.event("gen_ai.evaluation.result")
    assert event.attributes["gen_ai.evaluation.name"] == "llm_shadow.judge"
    assert event.attributes["gen_ai.evaluation.score.label"] == "contradiction"
    assert "gen_ai.evaluation.explanation" not in event.attributes  # no content capture
    call = trace.one("chat judge")
    assert call.kind == "CLIENT" and call.parent_span_id == judge.span_id
    assert call.attributes["llm_shadow.role"] == "judge"
    assert call.attributes["llm_shadow.cost.usd"] > 0
    # What the judge's model was asked: the question and both answers, with its own key.
    (asked,) = [r for r in judged.fleet["judge"].requests
                if "what is a sidecar proxy" in prompt_of(r.json())]
    assert asked.header("authorization") == "Bearer sk-model-judge"
    assert "Answer to: what is a sidecar proxy" in prompt_of(asked.json())


def test_a_shadowed_route_not_listed_never_reaches_the_judge(judged: JudgeStack) -> None:
    stack = judged.stack
    request_id, _ = message(stack.url("/shadow/anthropic"), "what is a canary release")
    trace = stack.trace(request_id, expect=["comparison"])
    assert trace.one("comparison").attributes["llm_shadow.divergence.label"] == "minor"
    stack.barrier()
    assert trace.named("judge") == []
    assert not [r for r in judged.fleet["judge"].requests
                if "canary release" in prompt_of(r.json())]
    assert stack.statz()["judge"]["not_judged"].get("route_not_allowed", 0) >= 1


def test_the_verdict_is_counted_in_metrics_and_in_the_report(judged: JudgeStack) -> None:
    stack = judged.stack
    request_id, _ = chat(stack.url(JUDGED_ROUTE), "what is a blue-green deployment")
    stack.trace(request_id, expect=["judge"])

    def verdicts() -> float:
        return sum(sample.value for family in text_string_to_metric_families(stack.scrape())
                   if family.name == "llm_shadow_judge_verdicts"
                   for sample in family.samples if sample.name.endswith("_total")
                   and sample.labels.get("llm_shadow_judge_verdict") == "contradiction"
                   and sample.labels.get("llm_shadow_route") == JUDGED_ROUTE)

    wait_for(lambda: verdicts() >= 1, timeout=20, message="judge verdicts in /metrics")

    def report() -> dict[str, Any] | None:
        result = llm_shadow("report", "--config", str(stack.proxy.config_path),
                            "--format", "json", "--route", JUDGED_ROUTE,
                            cwd=stack.proxy.dir)
        assert result.returncode == 0, result.stderr
        routes_ = json.loads(result.stdout)["routes"]
        return routes_[0] if routes_ and routes_[0]["judge"] else None

    route: dict[str, Any] = wait_for(report, timeout=30, interval=0.5,
                                     message="the judge in the report")
    judge = route["judge"]
    assert judge["verdicts"] >= 1 and judge["rules_lenient"] == judge["verdicts"]
    assert judge["table"] == {"minor": {"contradiction": judge["verdicts"]}}
    assert route["cost"]["judge"]["calls"] == judge["verdicts"]
    text = llm_shadow("report", "--config", str(stack.proxy.config_path), "--route",
                      JUDGED_ROUTE, cwd=stack.proxy.dir).stdout
    assert "verdicts, agreeing with the rules 0.0% (0)" in text
