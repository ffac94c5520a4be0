"""The deadline arithmetic: what a step may still use of one total budget."""

from __future__ import annotations

import pytest

from proxy.deadline import MIN_STEP, Deadline


@pytest.mark.parametrize("budget,elapsed,timeout,remaining,capped,binding,expired", [
    # budget, seconds elapsed, the step's own timeout -> what is left, the step's timeout,
    # whether the budget ends the step, whether no step may start any more
    (5.0, 0.0, 30.0, 5.0, 5.0, True, False),
    (5.0, 1.0, 30.0, 4.0, 4.0, True, False),
    (5.0, 1.0, 0.5, 4.0, 0.5, False, False),
    (5.0, 4.5, 0.5, 0.5, 0.5, False, False),
    (5.0, 4.75, 0.5, 0.25, 0.25, True, False),
    (5.0, 5.0 - MIN_STEP / 2, 30.0, MIN_STEP / 2, MIN_STEP / 2, True, True),
    (5.0, 5.0, 30.0, 0.0, 0.0, True, True),
    (5.0, 9.0, 30.0, 0.0, 0.0, True, True),
])
def test_what_a_step_may_use(budget: float, elapsed: float, timeout: float,
                             remaining: float, capped: float, binding: bool,
                             expired: bool) -> None:
    deadline = Deadline.after(budget, now=100.0)
    now = 100.0 + elapsed
    assert deadline.remaining(now) == pytest.approx(remaining)
    assert deadline.cap(timeout, now) == pytest.approx(capped)
    assert (deadline.cap(timeout, now) < timeout) is binding
    assert deadline.expired(now) is expired
