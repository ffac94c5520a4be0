"""The report buffer's bounds (a sink in memory): entries beyond `max_pending` are
dropped and counted; kept pairs beyond `max_pending_examples` lose their example but
keep their counters."""

from __future__ import annotations

import asyncio

from proxy.comparison import Comparison
from proxy.report.buffer import ReportBuffer
from proxy.report.entry import ReportEntry
from proxy.report.example import Example, Side


class Sink:
    def __init__(self) -> None:
        self.written: list[ReportEntry] = []

    async def record_many(self, entries: list[ReportEntry]) -> bool:
        self.written += entries
        return True


def divergent(index: int) -> ReportEntry:
    pair = Example("/x", f"r{index}", 0.0, "major", "fact_changed", 1.0, Side("a"), Side("b"))
    return ReportEntry("/x", f"r{index}", comparison=Comparison("major", 1.0), example=pair)


def test_entries_beyond_the_bound_are_dropped_and_counted() -> None:
    buffer = ReportBuffer(Sink(), max_pending=3)
    for index in range(5):
        buffer.add(ReportEntry("/x", f"r{index}"))
    assert (len(buffer.pending), buffer.dropped) == (3, 2)


def test_examples_beyond_their_bound_are_dropped_and_their_counters_kept() -> None:
    sink = Sink()
    buffer = ReportBuffer(sink, max_pending_examples=2, max_batch=2)
    for index in range(4):
        buffer.add(divergent(index))
    assert [e.example is not None for e in buffer.pending] == [True, True, False, False]
    assert buffer.examples_dropped == 2
    asyncio.run(buffer.flush())
    assert len(sink.written) == 4 and all(e.comparison is not None for e in sink.written)
    buffer.add(divergent(9))  # flushed: room again
    assert buffer.pending[0].example is not None and buffer.examples_dropped == 2


class SlowSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def record_many(self, entries: list[ReportEntry]) -> bool:
        self.writing.set()
        await self.release.wait()
        return await super().record_many(entries)


def test_examples_being_written_still_count_against_their_bound() -> None:
    async def scenario() -> None:
        sink = SlowSink()
        buffer = ReportBuffer(sink, max_pending_examples=2)
        buffer.add(divergent(0))
        buffer.add(divergent(1))
        writing = asyncio.get_running_loop().create_task(buffer.flush())
        await sink.writing.wait()  # the two pairs are on their way, not yet written
        buffer.add(divergent(2))
        assert buffer.pending[0].example is None and buffer.examples_dropped == 1
        sink.release.set()
        await writing
        buffer.add(divergent(3))  # written: room again
        assert buffer.pending[-1].example is not None and buffer.examples_dropped == 1

    asyncio.run(scenario())
