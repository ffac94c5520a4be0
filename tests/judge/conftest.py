"""Fixtures for the judge: a fake judge model on a real loopback socket (it answers the
verdict written into the answer it judges), settings that name it, and a harness that
runs comparisons through a real `Comparer` with the judge attached, recording into
memory telemetry and a real report on the session's redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from proxy.comparison import DivergencePolicy, Limits
from proxy.config import Settings, parse_config
from proxy.exchange import Captured
from proxy.judge.grader import Judge, build_judge
from proxy.orchestrator.target import TargetCall
from proxy.recording.comparer import Comparer
from proxy.redisclient import redis_client
from proxy.report.aggregate import RouteSummary
from tests.fakes.models import ModelBehaviour, ModelFleet, scripted_verdict
from tests.fakes.proxyproc import REPO, routes_to
from tests.fakes.records import destination, target_call
from tests.recording.conftest import Report, report_on
from tests.telemetry.conftest import Memory

JSON = [(b"content-type", b"application/json")]
LEGACY = "The service restarts every night after the backup finishes."
# The rules label this `minor` (text_edit) against LEGACY, with or without a marker.
REWORDED = "The service restarts each night once the backup finishes."
JUDGE_KEY = "sk-model-judge"


def judging(verdict: str) -> str:
    """A reworded answer that asks the fake judge for `verdict`."""
    return f"{REWORDED} verdict={verdict}"


@pytest.fixture(scope="session")
def judge_fleet() -> Iterator[ModelFleet]:
    with ModelFleet({"judge": ModelBehaviour(answer=scripted_verdict)}) as fleet:
        yield fleet


@pytest.fixture
def fake_judge(judge_fleet: ModelFleet) -> ModelFleet:
    """The fake judge, back to answering verdicts, its records cleared."""
    judge_fleet["judge"].behaviour = ModelBehaviour(answer=scripted_verdict)
    judge_fleet.reset()
    return judge_fleet


def judge_settings(fleet: ModelFleet, *, key: bool = True, model: dict[str, Any] | None = None,
                   **judge: Any) -> Settings:
    """Settings whose judge names the fake judge model, on /openai, every eligible
    comparison (overridable with `judge` keys); the model's key is set unless `key`."""
    section = {"enabled": True, "model": "judge", "routes": ["/openai"],
               "sample_percent": 100.0, "labels": ["equivalent", "minor", "major"],
               "timeout_seconds": 10.0, **judge}
    entry = {**fleet.entries(judge={"enabled": False, "input_cost_per_1m_tokens": 1.0,
                                    "output_cost_per_1m_tokens": 2.0})[0], **(model or {})}
    if entry.get("api") == "anthropic":
        entry["base_url"] = fleet.url("judge")
    data = {"proxy": {"routes": routes_to("http://127.0.0.1:9")}, "models": [entry],
            "redis": {"key_prefix": f"judge-{uuid.uuid4().hex[:8]}"},
            "comparison": {"judge": section}}
    keys = {"judge": SecretStr(JUDGE_KEY)} if key else {}
    return Settings(config=parse_config(data, "<test>"), source="<test>", base_dir=REPO,
                    model_keys=keys)


def answer(text: str) -> Captured:
    body = orjson.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})
    return Captured(200, JSON, body, False, 0.0, 0.1, 1.0)


def chat_call(route: str = "/openai", request_id: str | None = None,
              question: str = "When does the service restart?") -> TargetCall:
    where = destination(route.encode() + b"/v1/chat/completions")
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
    return target_call("shadow", where, payload=payload,
                       request_id=request_id or f"req-{uuid.uuid4().hex[:10]}")


@dataclass
class Harness:
    judge: Judge
    comparer: Comparer
    memory: Memory
    report: Report

    def compare(self, candidate: str, *, legacy: str = LEGACY,
                call: TargetCall | None = None) -> str:
        """One compared request (the comparer offers it to the judge); its label."""
        return self.comparer.candidate(call or chat_call(), legacy=answer(legacy),
                                       candidate=answer(candidate), parent=None,
                                       outcome="ok").label

    async def settle(self) -> None:
        """Wait for every judgement in flight (each has its own deadline)."""
        while self.judge.tasks:
            await asyncio.wait(list(self.judge.tasks))

    async def summary(self, route: str = "/openai") -> RouteSummary:
        await self.settle()
        return await self.report.summary(route)

    def spans(self, name: str) -> list[Any]:
        return [span for span in self.memory.finished() if span.name == name]


@contextlib.asynccontextmanager
async def harness(settings: Settings, redis_url: str, *,
                  capture: bool = False) -> AsyncIterator[Harness]:
    memory = Memory(capture="span_and_event" if capture else "none")
    client = redis_client(redis_url, connect_timeout=1.0, socket_timeout=2.0)
    try:
        async with report_on(redis_url) as report:
            judge = build_judge(settings, client, memory.telemetry, report.buffer)
            comparer = Comparer(DivergencePolicy(), Limits(), memory.telemetry, report.buffer,
                                judge=judge)
            try:
                yield Harness(judge, comparer, memory, report)
            finally:
                await judge.aclose()
    finally:
        await client.aclose()
        memory.telemetry.close(timeout=5)
