"""Report entries on their way to Redis: buffered in memory and written together.

Layer: adapter (background task). Every proxied LLM call adds at least one entry (its
cost), so writing each on its own would cost a Redis round trip per request. `add` is
synchronous and never waits; a background task writes what accumulated every `interval`
seconds (or sooner when `max_batch` entries are waiting), merged per time bucket, in one
pipeline. When more than `max_pending` entries wait (Redis slow or away), new ones are
dropped and counted, so memory stays bounded. Kept divergent pairs are bigger (up to
12 KiB each) and only the newest few per route survive in Redis anyway, so at most
`max_pending_examples` wait at once; past that an entry keeps its counters and loses
its example (counted in `examples_dropped`).

Shadows skipped under load (`overload`, `concurrency_full`) happen once per request at
saturation, exactly when entries pile up: they are only counted (`count_skip`, one
Counter increment) and become one entry per (route, reason) at each flush, so they
never fill the buffer or push out comparisons. While the buffer is full they keep
counting, and go out with a later flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import replace
from typing import Protocol

from proxy.report.entry import ReportEntry

log = logging.getLogger("llm_shadow.report")


class Sink(Protocol):
    async def record_many(self, entries: list[ReportEntry]) -> bool: ...


class ReportBuffer:
    def __init__(self, sink: Sink, *, interval: float = 0.5, max_batch: int = 500,
                 max_pending: int = 20_000, max_pending_examples: int = 200):
        self.sink = sink
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.max_pending_examples = max_pending_examples
        self.pending: list[ReportEntry] = []
        self.dropped = 0
        self.examples_dropped = 0
        self._examples = 0  # entries in `pending` that carry an example
        self.skips: Counter[tuple[str, str]] = Counter()  # (route, reason), not yet pending
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, entry: ReportEntry) -> None:
        if len(self.pending) >= self.max_pending:
            self.dropped += 1
            return
        if entry.example is not None:
            if self._examples >= self.max_pending_examples:
                self.examples_dropped += 1
                entry = replace(entry, example=None)
            else:
                self._examples += 1
        self.pending.append(entry)
        if len(self.pending) >= self.max_batch and self._wake is not None:
            self._wake.set()

    def count_skip(self, route: str, reason: str) -> None:
        """A shadow that was due and did not run: counted, written with the next flush."""
        self.skips[(route, reason)] += 1

    def _pend_skips(self) -> None:
        """The skips counted so far as one entry per (route, reason), when they fit (their
        time is the write's: `at` None)."""
        if not self.skips or len(self.pending) + len(self.skips) > self.max_pending:
            return
        self.pending += [ReportEntry(route, "", skipped=reason, skipped_count=count)
                         for (route, reason), count in self.skips.items()]
        self.skips.clear()

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # a bug here must not stop reporting: log it and go on
                log.exception("report: flush failed")

    async def flush(self) -> None:
        self._pend_skips()
        while self.pending:
            batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            examples = sum(entry.example is not None for entry in batch)
            try:  # pairs being written still wait: they count until the write ends
                written = await self.sink.record_many(batch)
            finally:
                self._examples -= examples
            if not written:
                return
            if not self.pending:  # room now for the skips that waited
                self._pend_skips()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Let the running write finish, then write what is left (bounded)."""
        self._closing = True
        try:
            async with asyncio.timeout(timeout):
                if self._task is not None and self._wake is not None:
                    self._wake.set()
                    await self._task
                await self.flush()
        except TimeoutError:
            log.warning("report: %d entries not written at shutdown", len(self.pending))
            if self._task is not None:
                self._task.cancel()
