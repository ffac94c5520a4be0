"""`llm-shadow demo` runs the whole story and says what happened: without a Redis (the
in-process store) and with one (the session's redis-server, keys deleted afterwards).
First, fast checks of what the story rests on: the fakes' wording gives a non-zero noise
floor that a healthy orchestrator stays under and the injected cross-talk clearly
exceeds, and the trace destination follows the user's OTEL_* settings.

Both demos run as real subprocesses (`python -m proxy demo`) with short steps, started
together so the module costs one demo's time; each test then waits for its own process
with a deadline. The assertions are on what a newcomer reads: which store, the
promotions, the injected regression, the automatic rollback and its reason, the report
and where the traces went; and a demo whose story cannot happen exits 1 saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from proxy.comparison.answer import Answer
from proxy.comparison.comparator import compare
from proxy.demo import atlas as facts
from proxy.demo import world
from proxy.demo.traces import choose_destination
from tests.conftest import POLLUTING
from tests.fakes.servers import RedisServer, free_port

FAST = ["--step-seconds", "1", "--rate", "50"]
DEADLINE_SECONDS = 110.0


def answer(text: str) -> Answer:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return Answer("openai_chat", text=text, finish_reason="stop")
    return Answer("openai_chat", text=text, finish_reason="stop", is_json=True,
                  content_json=data)


def divergent(a: str, b: str) -> bool:
    return compare(answer(a), answer(b)).divergent


@pytest.mark.parametrize("kind", ["capital", "currency"])
def test_legacy_disagrees_with_itself_sometimes_and_a_healthy_orchestrator_no_more(
        kind: str) -> None:
    rng = random.Random(1)
    pairs = noise = healthy = 0
    for country in facts.COUNTRIES * 40:
        question = facts.Question(kind, country)  # type: ignore[arg-type]
        legacy = facts.legacy_answer(question, rng)
        pairs += 1
        noise += divergent(legacy, facts.legacy_answer(question, rng))
        healthy += divergent(legacy, facts.plain_answer(question))
    assert 0.03 < noise / pairs < 0.25, "the noise floor must be visible, and modest"
    assert healthy < noise, "the healthy orchestrator must stay under the noise floor"


@pytest.mark.parametrize("kind", ["capital", "currency", "json"])
def test_the_cross_talk_regression_diverges_from_every_legacy_wording(kind: str) -> None:
    rng = random.Random(2)
    for country in facts.COUNTRIES:
        question = facts.Question(kind, country)  # type: ignore[arg-type]
        wrong = facts.cross_talk_answer(question)
        assert not facts.is_right(question, wrong)
        for _ in range(10):
            legacy = facts.legacy_answer(question, rng)
            assert facts.is_right(question, legacy)
            assert divergent(legacy, wrong), (legacy, wrong)


@pytest.mark.parametrize(("messages", "expected"), [
    ([{"role": "user", "content": "What is the capital of Peru?"}], ("capital", "Peru")),
    ([{"role": "user", "content": [{"type": "text", "text": "capital of South Korea?"}]}],
     ("capital", "South Korea")),
    ([{"role": "user", "content": facts.json_question(facts.COUNTRIES[0])}],
     ("json", "France")),
    ([{"role": "user", "content": "What is the capital of Japan?"},
      {"role": "assistant", "content": "Tokyo."},
      {"role": "user", "content": facts.FOLLOW_UP}], ("currency", "Japan")),
    ([{"role": "user", "content": facts.FOLLOW_UP}], None),
    ([{"role": "user", "content": "Tell me a joke"}], None),
])
def test_the_fakes_understand_the_clients_questions(
        messages: list[dict[str, object]], expected: tuple[str, str] | None) -> None:
    question = facts.understand(messages)
    assert (None if question is None else (question.kind, question.country.name)) == expected


@pytest.mark.parametrize(("env", "kind", "set_here"), [
    ({}, "file", {}),
    ({"OTEL_METRICS_EXPORTER": "otlp"}, "file", {}),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "user",
     {"OTEL_METRICS_EXPORTER": "none"}),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://u:p@collector:4318/v1/traces"}, "user",
     {"OTEL_METRICS_EXPORTER": "none"}),
    ({"OTEL_TRACES_EXPORTER": "console"}, "user", {"OTEL_METRICS_EXPORTER": "none"}),
    ({"OTEL_TRACES_EXPORTER": "none"}, "disabled", {}),
    ({"OTEL_SDK_DISABLED": "true"}, "disabled", {}),
])
def test_traces_follow_the_users_otel_settings_else_go_to_a_file(
        env: dict[str, str], kind: str, set_here: dict[str, str], tmp_path: Path) -> None:
    destination = choose_destination(env, tmp_path)
    assert destination.kind == kind
    assert dict(destination.environment) == set_here
    assert (destination.path == tmp_path / "traces.json") == (kind == "file")
    assert "u:p@" not in destination.describe


def test_a_runtime_whose_task_ignores_its_cancellation_still_closes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.11 can lose a cancellation inside redis-py; a loop without a closing flag
    then never ends and its owner's aclose() waits forever. The demo's close budget
    cancels the wait, which cancels the stuck task again."""
    monkeypatch.setattr(world, "RUNTIME_CLOSE_BUDGET_SECONDS", 0.2)

    async def stubborn() -> None:
        lost = False
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost = True  # the first cancellation goes missing

    class StuckRuntime:
        async def __aexit__(self, *exc: object) -> None:
            task = asyncio.get_running_loop().create_task(stubborn())
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def main() -> bool:
        guard = asyncio.timeout(30)  # without the budget, only this would end the wait
        async with guard:
            await world._close_runtime(StuckRuntime())
        return guard.expired()

    assert asyncio.run(main()) is False


@dataclass
class DemoRun:
    process: subprocess.Popen[str]
    folder: Path
    _result: tuple[int, str, str] | None = None

    def result(self) -> tuple[int, str, str]:
        """Exit status, standard output and standard error, once the demo ended."""
        if self._result is None:
            try:
                out, err = self.process.communicate(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, err = self.process.communicate()
                pytest.fail(f"the demo did not finish within {DEADLINE_SECONDS}s:\n{out}\n{err}")
            self._result = (self.process.returncode, out, err)
        return self._result


def start_demo(folder: Path, redis_url: str, *options: str) -> DemoRun:
    env = {name: value for name, value in os.environ.items()
           if not name.upper().startswith(("LLM_SHADOW_", "OTEL_"))
           and name.upper() not in POLLUTING}
    env["LLM_SHADOW_REDIS_URL"] = redis_url
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "demo", *FAST, "--out", str(folder), *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder)
    return DemoRun(process, folder)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory,
          redis_server: RedisServer) -> Iterator[dict[str, DemoRun]]:
    closed_port = free_port()  # bound then released: nothing listens there
    runs = {"memory": start_demo(tmp_path_factory.mktemp("demo-memory"),
                                 f"redis://127.0.0.1:{closed_port}/0"),
            "redis": start_demo(tmp_path_factory.mktemp("demo-redis"), redis_server.url),
            # A deadline the ramp cannot meet: the demo must say so and fail.
            "stuck": start_demo(tmp_path_factory.mktemp("demo-stuck"), "memory://",
                                "--timeout", "2")}
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


def assert_the_story(code: int, out: str, err: str, folder: Path) -> None:
    assert code == 0, f"exit {code}\n{out}\n{err}"
    assert "ramp STARTED" in out
    assert "ramp PROMOTED" in out
    assert "REGRESSION INJECTED" in out
    rollback = re.search(r"ramp ROLLED BACK AUTOMATICALLY by ramp:demo: (.+)", out)
    assert rollback is not None, out
    assert "guardrail breached" in rollback.group(1)
    assert "flags audit: v" in out and '"kill":true' in out.replace("\n", "").replace(" ", "")
    assert "kill switch on: legacy only" in out
    assert "Comparison report" in out and "== /openai ==" in out
    assert re.search(r"compared\s+\d+ requests", out)
    assert (folder / "report.html").stat().st_size > 0
    spans = re.search(r"Traces: (\d+) spans -> (\S+)", out)
    assert spans is not None and int(spans.group(1)) > 0, out
    assert Path(spans.group(2)) == folder / "traces.json"
    lines = (folder / "traces.json").read_text().splitlines()
    names = {json.loads(line)["name"] for line in lines}  # JSON Lines: one span per line
    assert "comparison" in names
    assert "Traceback" not in out + err


@pytest.mark.integration
def test_without_redis_the_demo_runs_on_the_in_process_store(
        demos: dict[str, DemoRun]) -> None:
    run = demos["memory"]
    code, out, err = run.result()
    assert "store            in-process (memory://): no Redis at redis://127.0.0.1:" in out
    assert_the_story(code, out, err, run.folder)


@pytest.mark.integration
def test_with_redis_the_demo_uses_it_and_deletes_its_keys(
        demos: dict[str, DemoRun], redis_server: RedisServer) -> None:
    run = demos["redis"]
    code, out, err = run.result()
    used = re.search(r"Redis at redis://127\.0\.0\.1:\d+/0,\s+keys\s+under\s+"
                     r"(llm-shadow-demo-\w+):\*", out)
    assert used is not None, out
    assert_the_story(code, out, err, run.folder)
    prefix = used.group(1)
    assert re.search(rf"Redis: deleted the demo's \d+ keys under {prefix}:\*", out)
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert list(client.scan_iter(match=f"{prefix}:*")) == []
    finally:
        client.close()


@pytest.mark.integration
def test_a_demo_that_cannot_finish_its_story_fails_and_says_why(
        demos: dict[str, DemoRun]) -> None:
    code, out, err = demos["stuck"].result()
    assert code == 1, out + err
    assert "llm-shadow demo: FAILED: the ramp did not reach its last step within 2s" in out
    assert "Traceback" not in out + err
