"""The soak benchmark's short form (`bench/soak.py --duration 12`): shadow 100 % and
divert 25 % to an orchestrator that fails in every way at random, Redis (append-only
file) killed and restarted twice. Nothing the client gets is lost or wrong: every
non-streamed request gets a whole answer from one side, every cut stream is a diverted
one the proxy counted, and the flags come back `ready` at the version written.

Memory and descriptors are only checked for gross leaks (descriptors growing by
hundreds); their figures are the benchmark's to print.
"""

from __future__ import annotations

import io

import pytest

from bench.soak import run

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_a_short_soak_loses_nothing_and_accounts_for_every_cut() -> None:
    out = io.StringIO()
    result = run(duration=12.0, clients=12, seed=3, out=out)
    report = out.getvalue()
    tally = result.tally
    assert tally.requests["whole"] > 50 and tally.requests["stream"] > 50, report
    assert tally.lost["whole"] == 0, report
    assert tally.wrong == [], report
    assert tally.cut_not_diverted == 0, report
    assert tally.lost["stream"] == result.cuts_counted, report
    assert tally.answered_by["orchestrator"] > 0 and sum(result.fallbacks.values()) > 0, report
    assert result.flags_state == "ready", report
    assert result.flags_version == result.expected_version, report
    assert result.fds[1] - result.fds[0] < 200, report
