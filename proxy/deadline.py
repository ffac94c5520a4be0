"""One total time budget for an attempt made of several steps, and what each step may
still use of it.

Layer: pure core (no clock of its own: every method takes `now`, a `time.monotonic()`
reading, so the arithmetic is tested with plain numbers).

Why a deadline and not a timeout per step: a divert that falls back to legacy must do so
within a time that fits a live request, however many steps the orchestrator takes in
turn (model selection, a first model, one more model below the quality threshold,
validation, the first byte). A per-step timeout adds up (two 30 s model timeouts in a
row and a 60 s first-byte limit kept a client waiting a minute); a deadline set once
when the attempt starts caps every step by what is left:

    budget 5 s, started at t=100          deadline.at = 105
    a model call at t=101, its own 30 s   timeout = min(30, 105 - 101) = 4   (the budget's)
    one more model at t=104.99            remaining 0.01 < MIN_STEP: not started

When `cap` shortened a step's timeout, the deadline, not the step's own timeout, is what
ends the step, so the outcome can name the budget instead of the step.
"""

from __future__ import annotations

from dataclasses import dataclass

# A step with less time than this left is not started: a model call cannot answer in
# 10 ms, and starting one only to cancel it costs a connection and a billed prompt.
MIN_STEP = 0.01
# How long past the deadline a caller waits for a target that ends its own steps at the
# deadline (the in-process pipeline) to hand back its answer, which records each model
# call it ended: a caller's own timeout ending at the deadline itself would cancel the
# target first and lose them.
GRACE = 0.05


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on the monotonic clock by which an attempt must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float, now: float) -> Deadline:
        return cls(now + seconds)

    def remaining(self, now: float) -> float:
        return max(0.0, self.at - now)

    def expired(self, now: float) -> bool:
        """True once too little is left to start another step."""
        return self.at - now < MIN_STEP

    def cap(self, timeout: float, now: float) -> float:
        """A step's own `timeout`, shortened to what is left of the budget."""
        return min(timeout, self.remaining(now))
