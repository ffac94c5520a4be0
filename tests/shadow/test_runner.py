"""The shadow runner's own guarantees, driven in-process with stub parts: a fault inside a
job (here, a comparator that raises) is caught and counted and no task leaks; the runner
never awaits anything on the caller's behalf."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from proxy.errors import UpstreamFailed
from proxy.exchange import Captured
from proxy.orchestrator.target import TargetCall, TargetReply
from proxy.shadow.runner import ShadowJob, ShadowRunner
from proxy.transport import PoolGate
from proxy.usage.prices import PriceTable
from tests.fakes.records import memory_budget, target_call


class Answering:
    name = "stub"

    def supports(self, provider: str, path: str) -> bool:
        return True

    async def call(self, call: TargetCall, deadline: Any = None) -> TargetReply:
        async def parts() -> Any:
            yield b'{"choices": [{"message": {"content": "hi"}}]}'

        return TargetReply(200, [(b"content-type", b"application/json")], parts())


class BrokenComparer:
    def candidate(self, **kwargs: Any) -> None:
        raise RuntimeError("comparator bug")

    def outcome(self, **kwargs: Any) -> None:
        return None

    def skipped(self, route: str, reason: str) -> None:
        return None


class NullTelemetry:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _job(orchestrator_answer: Captured | None = None) -> ShadowJob:
    return ShadowJob(target_call(), None, orchestrator_answer=orchestrator_answer)


LEGACY_ANSWER = Captured(200, [(b"content-type", b"application/json")],
                         b'{"choices": [{"message": {"content": "hi"}}]}',
                         False, 0.0, 0.0, 0.1)


def _runner(target: Any = None, *, comparer: Any = None, replay: Any = None,
            budget: Any = None, **settings: Any) -> ShadowRunner:
    """A runner on stub parts; `settings` replace the defaults below."""
    options: dict[str, Any] = {"max_concurrency": 4, "timeout": 5, "reserve_usd": 0.0,
                               "noise_percent": 0, "cap": 1 << 20, **settings}
    return ShadowRunner(
        target=Answering() if target is None else target, replay=replay,
        budget=memory_budget(1.0) if budget is None else budget,
        comparer=BrokenComparer() if comparer is None else comparer,
        telemetry=NullTelemetry(),  # type: ignore[arg-type]
        prices=PriceTable.from_sections({}), **options)


async def _drained(runner: ShadowRunner) -> ShadowRunner:
    """The runner once every job has ended (a job still running after 30 s fails)."""
    async with asyncio.timeout(30):
        while runner.tasks:
            await asyncio.sleep(0.01)
    return runner


def test_a_comparator_fault_is_caught_counted_and_leaks_no_task() -> None:
    unretrieved: list[dict[str, Any]] = []

    async def scenario() -> ShadowRunner:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: unretrieved.append(context))
        runner = _runner()
        job = _job()
        assert runner.launch(job) is True
        job.legacy_finished(LEGACY_ANSWER)
        return await _drained(runner)

    runner = asyncio.run(scenario())
    gc.collect()
    assert runner.skipped["error"] == 1
    assert not runner.tasks
    assert unretrieved == []


def test_launch_drops_when_full_and_never_queues() -> None:
    async def scenario() -> ShadowRunner:
        runner = _runner(max_concurrency=1)
        first, second = _job(), _job()
        assert runner.launch(first) is True
        assert runner.launch(second) is False
        assert second.legacy.done()
        await runner.aclose()
        return runner

    runner = asyncio.run(scenario())
    assert runner.skipped["concurrency_full"] == 1


class FailingReplay:
    async def call(self, *args: Any) -> Captured:
        raise UpstreamFailed("legacy unreachable")


def test_a_failed_background_legacy_call_gives_its_reservation_back() -> None:
    """The shadow of a divert is a background legacy call; when it fails, what it
    reserved from the budget is given back."""
    answered = Captured(200, [], b"{}", False, 0.0, 0.0, 0.1)

    async def scenario() -> tuple[float, ShadowRunner]:
        budget = memory_budget(1.0)
        runner = _runner(replay=FailingReplay(), budget=budget, reserve_usd=0.25)
        for _ in range(3):
            assert runner.launch(_job(orchestrator_answer=answered))
        await _drained(runner)
        return await budget.spent(), runner

    spent, runner = asyncio.run(scenario())
    assert spent == 0.0
    assert runner.skipped["error"] == 3


class CountingComparer(BrokenComparer):
    def __init__(self) -> None:
        self.reported: list[tuple[str, str]] = []

    def skipped(self, route: str, reason: str) -> None:
        self.reported.append((route, reason))


def test_while_shedding_no_shadow_starts_and_the_skip_is_reported() -> None:
    from proxy.shadow.shedding import Shedder

    comparer = CountingComparer()

    async def scenario() -> ShadowRunner:
        shedder = Shedder(5.0, shedding=True)
        runner = _runner(comparer=comparer, shedder=shedder)
        assert runner.refuse("/openai") == "overload"
        job = _job()
        assert runner.launch(job) is False
        assert job.legacy.done()
        shedder.shedding = False
        assert runner.refuse("/openai") is None
        return runner

    runner = asyncio.run(scenario())
    assert runner.skipped["overload"] == 2
    assert not runner.tasks
    assert comparer.reported == [("/openai", "overload"), ("/openai", "overload")]


class QuietComparer(CountingComparer):
    def candidate(self, *args: Any, **kwargs: Any) -> None:
        return None

    def costs(self, *args: Any, **kwargs: Any) -> None:
        return None


class RecordingReplay:
    def __init__(self) -> None:
        self.calls = 0

    async def call(self, *args: Any) -> Captured:
        self.calls += 1
        raise AssertionError("no noise resample may start while shedding")


def test_while_shedding_no_noise_resample_starts() -> None:
    from proxy.shadow.shedding import Shedder

    replay = RecordingReplay()

    async def scenario() -> ShadowRunner:
        shedder = Shedder(5.0)
        runner = _runner(replay=replay, comparer=QuietComparer(), noise_percent=100,
                         shedder=shedder)
        job = _job()
        assert runner.launch(job) is True
        shedder.shedding = True  # pressure arrives while the shadow runs
        job.legacy_finished(LEGACY_ANSWER)
        return await _drained(runner)

    runner = asyncio.run(scenario())
    assert runner.completed == 1
    assert runner.skipped["overload"] == 1
    assert replay.calls == 0


class CutShort:
    name = "stub"

    def supports(self, api: object) -> bool:
        return True

    async def call(self, call: TargetCall, deadline: Any = None) -> TargetReply:
        async def parts() -> Any:
            yield b'{"choices": [{"mess'
            raise UpstreamFailed("upstream orchestrator sent a malformed response")

        return TargetReply(200, [(b"content-type", b"application/json")], parts())


class OutcomeComparer(QuietComparer):
    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[str] = []

    def outcome(self, **kwargs: Any) -> None:
        self.outcomes.append(kwargs["outcome"])


def test_an_answer_cut_short_is_the_orchestrators_failure_not_a_job_error() -> None:
    comparer = OutcomeComparer()

    async def scenario() -> ShadowRunner:
        runner = _runner(CutShort(), comparer=comparer)
        job = _job()
        assert runner.launch(job)
        job.legacy_finished(None)
        return await _drained(runner)

    runner = asyncio.run(scenario())
    assert "error" not in runner.skipped
    assert comparer.outcomes == ["failed"]


class EndsAtTheDeadline:
    """Like the in-process pipeline: it ends its own model call at the attempt's deadline,
    then (a few steps later) hands back its answer, which records that call and its cost."""

    name = "stub"

    def supports(self, api: object) -> bool:
        return True

    async def call(self, call: TargetCall, deadline: Any = None) -> TargetReply:
        import time

        from proxy.orchestrator.result import CallRecord, OrchestratorAnswer
        from proxy.orchestrator.target import OrchestratorFailed

        await asyncio.sleep(deadline.remaining(time.monotonic()))
        for _ in range(3):  # recording the ended call, merging, building the answer
            await asyncio.sleep(0)
        ended = CallRecord(model="m1", provider="openai", api="openai_chat", host="m.invalid",
                           started_at=0.0, ended_at=0.2, outcome="timeout",
                           error_type="deadline", cost_usd=0.03)
        raise OrchestratorFailed("deadline", OrchestratorAnswer(
            "failed", "deadline", call.request_id, "general", calls=(ended,),
            out_of_time=True))


class CostComparer(OutcomeComparer):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Any] = []

    def costs(self, *args: Any, answer: Any = None, **kwargs: Any) -> None:
        self.answers.append(answer)


def test_a_shadow_out_of_time_keeps_the_answer_the_pipeline_hands_back_at_the_deadline(
) -> None:
    """The job's own timeout leaves the target time to hand back its answer after ending
    its calls at the deadline: the calls are recorded and the budget settles their cost,
    not the estimate."""
    comparer = CostComparer()
    budget = memory_budget(10.0)

    async def scenario() -> tuple[ShadowRunner, float]:
        runner = _runner(EndsAtTheDeadline(), comparer=comparer, budget=budget,
                         timeout=0.2, reserve_usd=0.5)
        job = _job()
        assert runner.launch(job)
        job.legacy_finished(None)
        return await _drained(runner), await budget.spent()

    runner, spent = asyncio.run(scenario())
    assert runner.skipped["timeout"] == 1
    assert comparer.outcomes == ["failed"]
    [answer] = comparer.answers
    assert answer is not None and [c.outcome for c in answer.calls] == ["timeout"]
    assert spent == pytest.approx(0.03)


class StallsMidway(CutShort):
    async def call(self, call: TargetCall, deadline: Any = None) -> TargetReply:
        from proxy.errors import UpstreamTimeout

        async def parts() -> Any:
            yield b'{"choices": [{"mess'
            raise UpstreamTimeout("the orchestrator stopped sending")

        return TargetReply(200, [(b"content-type", b"application/json")], parts())


def test_an_answer_that_stalls_midway_counts_as_a_timeout_skip() -> None:
    comparer = OutcomeComparer()

    async def scenario() -> ShadowRunner:
        runner = _runner(StallsMidway(), comparer=comparer)
        job = _job()
        assert runner.launch(job)
        job.legacy_finished(None)
        return await _drained(runner)

    runner = asyncio.run(scenario())
    assert runner.skipped["timeout"] == 1
    assert comparer.outcomes == ["failed"]


class HoldsItsConnection:
    """An orchestrator whose answers take as long as the test says; counts the
    requests it was sent."""

    name = "stub"

    def __init__(self) -> None:
        self.calls = 0
        self.answer = asyncio.Event()

    def supports(self, api: object) -> bool:
        return True

    async def call(self, call: TargetCall, deadline: Any = None) -> TargetReply:
        self.calls += 1

        async def parts() -> Any:
            await self.answer.wait()
            yield b'{"choices": [{"message": {"content": "hi"}}]}'

        return TargetReply(200, [(b"content-type", b"application/json")], parts())


def test_a_shadow_waits_for_a_free_connection_before_building_its_request() -> None:
    """One connection, held by a shadow whose answer is slow: the next shadow does not
    send (or build) its request while it waits; after the pool timeout it fails as
    `pool_exhausted`, and once the connection is free again the next one is sent."""
    target, comparer = HoldsItsConnection(), OutcomeComparer()

    async def scenario() -> tuple[int, list[str], int, list[str]]:
        runner = _runner(target, comparer=comparer, connections=PoolGate(1),
                         connection_wait=0.3)
        first, second = _job(), _job()
        assert runner.launch(first) and runner.launch(second)
        second.legacy_finished(None)
        async with asyncio.timeout(30):
            while len(runner.tasks) > 1:  # the second gave up waiting
                await asyncio.sleep(0.01)
        sent_while_held, outcomes_while_held = target.calls, list(comparer.outcomes)
        target.answer.set()
        first.legacy_finished(None)
        third = _job()
        third.legacy_finished(None)
        await _drained(runner)
        assert runner.launch(third)
        await _drained(runner)
        return sent_while_held, outcomes_while_held, target.calls, comparer.outcomes

    sent_while_held, outcomes_while_held, sent, outcomes = asyncio.run(scenario())
    assert sent_while_held == 1 and outcomes_while_held == ["failed"]
    assert sent == 2 and outcomes == ["failed", "ok", "ok"]
