"""The report buffer's bounds (a sink in memory): entries beyond `max_pending` are
dropped and counted; kept pairs beyond `max_pending_examples` lose their example but
keep their counters."""

from __future__ import annotations

import asyncio

from proxy.comparison import Comparison
from proxy.report.buffer import ReportBuffer
from proxy.report.entry import ReportEntry, increments
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


def test_skips_at_saturation_are_counted_and_written_as_one_entry_per_route_and_reason(
) -> None:
    """A shadow skipped under load costs a count, not a pending entry: thousands of them
    neither fill the buffer nor push out a comparison, and the report's totals hold."""
    sink = Sink()
    buffer = ReportBuffer(sink, max_pending=3)
    for _ in range(1000):
        buffer.count_skip("/x", "overload")
    for _ in range(5):
        buffer.count_skip("/x", "concurrency_full")
    buffer.count_skip("/y", "overload")
    buffer.add(divergent(1))
    assert (len(buffer.pending), buffer.dropped) == (1, 0)
    asyncio.run(buffer.flush())
    totals: dict[str, int] = {}
    for entry in sink.written:
        for name, count in increments(entry)[0].items():
            if name.startswith("skip:"):
                key = f"{entry.route} {name}"
                totals[key] = totals.get(key, 0) + count
    assert totals == {"/x skip:overload": 1000, "/x skip:concurrency_full": 5,
                      "/y skip:overload": 1}
    assert len(sink.written) == 4 and sink.written[0].comparison is not None
    assert not buffer.skips and buffer.dropped == 0


def test_skips_wait_in_their_count_while_the_buffer_is_full() -> None:
    sink = Sink()
    buffer = ReportBuffer(sink, max_pending=2)
    buffer.add(divergent(1))
    buffer.add(divergent(2))
    buffer.count_skip("/x", "overload")
    buffer._pend_skips()  # full: the count waits
    assert len(buffer.pending) == 2 and buffer.skips[("/x", "overload")] == 1
    asyncio.run(buffer.flush())  # the waiting entries written, then the count
    assert [e.skipped for e in sink.written] == [None, None, "overload"]
    assert not buffer.skips and not buffer.pending


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
