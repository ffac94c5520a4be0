"""The noise floor statistics and the noise-sample choice."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.comparison import Proportion, excess_divergence, in_noise_sample


def test_newcombe_published_example() -> None:
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 - 48/80, method 10.
    excess = excess_divergence(Proportion(56, 70), Proportion(48, 80))
    assert excess.value == pytest.approx(0.2)
    assert excess.low == pytest.approx(0.0524, abs=1e-4)
    assert excess.high == pytest.approx(0.3339, abs=1e-4)
    assert excess.significant and excess.enough


def test_wilson_at_the_edges() -> None:
    low, high = Proportion(0, 10).wilson()
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert Proportion(0, 0).wilson() == (0.0, 1.0)


def test_no_noise_samples_means_no_excess() -> None:
    excess = excess_divergence(Proportion(5, 10), Proportion(0, 0))
    assert excess.value is None and not excess.significant and not excess.enough


def test_small_samples_are_not_enough() -> None:
    excess = excess_divergence(Proportion(9, 10), Proportion(1, 10))
    assert excess.significant and not excess.enough


def test_equal_rates_are_within_noise() -> None:
    excess = excess_divergence(Proportion(30, 100), Proportion(30, 100))
    assert excess.value == 0.0
    assert excess.low is not None and excess.low < 0 < (excess.high or 0)
    assert not excess.significant


@given(st.integers(0, 200), st.integers(1, 200), st.integers(0, 200), st.integers(1, 200))
def test_interval_contains_the_difference(h1: int, n1: int, h2: int, n2: int) -> None:
    excess = excess_divergence(Proportion(min(h1, n1), n1), Proportion(min(h2, n2), n2))
    assert excess.low is not None and excess.high is not None and excess.value is not None
    assert -1.0 <= excess.low <= excess.value <= excess.high <= 1.0


def test_noise_sample_is_stable_and_proportional() -> None:
    chosen = [in_noise_sample(f"req-{i}", 10.0) for i in range(20_000)]
    assert chosen == [in_noise_sample(f"req-{i}", 10.0) for i in range(20_000)]
    assert 1700 < sum(chosen) < 2300
    assert not in_noise_sample("x", 0) and in_noise_sample("x", 100)


def test_raising_the_percentage_only_adds_requests() -> None:
    low = {i for i in range(5000) if in_noise_sample(f"r{i}", 5)}
    high = {i for i in range(5000) if in_noise_sample(f"r{i}", 10)}
    assert low <= high
