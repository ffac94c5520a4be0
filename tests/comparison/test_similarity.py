"""Text and embedding divergence."""

from __future__ import annotations

import pytest

from proxy.comparison.similarity import cosine, embedding_divergence, text_divergence


@pytest.mark.parametrize(("a", "b", "low", "high"), [
    ("same", "same", 0.0, 0.0),
    ("Same  Text", "same text", 0.0, 0.0),
    ("The capital of France is Paris.", "Paris is the capital of France.", 0.0, 0.05),
    ("Python lists are mutable, tuples are immutable.",
     "Lists in Python can be changed after creation, while tuples cannot.", 0.2, 0.5),
    ("Yes.", "Certainly not, and here is a long explanation why.", 0.6, 1.0),
    ("", "something", 1.0, 1.0),
])
def test_text_divergence(a: str, b: str, low: float, high: float) -> None:
    value, cut = text_divergence(a, b)
    assert low <= value <= high
    assert not cut


def test_case_sensitivity_is_a_choice() -> None:
    assert text_divergence("Paris", "paris")[0] == 0.0
    assert text_divergence("Paris", "paris", case_sensitive=True)[0] > 0


def test_long_texts_are_cut_and_flagged() -> None:
    value, cut = text_divergence("a" * 50_000, "a" * 49_999 + "b", max_chars=1000)
    assert cut and value == 0.0


def test_cosine() -> None:
    assert cosine([1, 0], [2, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine([0, 0], [0, 0]) == 1.0
    assert cosine([0, 0], [1, 0]) == 0.0


def test_embedding_divergence() -> None:
    assert embedding_divergence([[1.0, 0.0]], [[1.0, 0.0]]) == (0.0, False)
    assert embedding_divergence([[1.0, 0.0]], [[-1.0, 0.0]])[0] == 1.0
    assert embedding_divergence([[1.0]], [[1.0], [1.0]])[0] == 1.0
    assert embedding_divergence([[1.0, 2.0]], [[1.0]])[0] == 1.0
    assert embedding_divergence([], []) == (0.0, False)


def test_embedding_budget() -> None:
    big = [[1.0] * 150_000, [1.0] * 150_000]
    value, cut = embedding_divergence(big, big)
    assert cut and value == 0.0
