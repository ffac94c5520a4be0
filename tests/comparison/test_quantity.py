"""Numbers, money, units, dates and times: two ways of writing one value give one key."""

from __future__ import annotations

import pytest

from proxy.comparison.quantity import quantities


def keys(text: str) -> list[str]:
    return [q.key for q in quantities(text)]


@pytest.mark.parametrize(("a", "b"), [
    ("It costs $3.99.", "It costs 3.99 USD."),
    ("It costs US$ 12", "It costs USD 12"),
    ("a 10% discount", "a 10 percent discount"),
    ("a 10% discount", "a 10 per cent discount"),
    ("1,000 requests", "1000 requests"),
    ("1.5 million users", "1,500,000 users"),
    ("five engineers", "5 engineers"),
    ("twenty-five dollars", "$25"),
    ("a dozen eggs", "12 eggs"),
    ("every half hour", "every 30 minutes"),
    ("1 hour", "60 minutes"),
    ("12 km", "12 kilometers"),
    ("800 m", "0.8 km"),
    ("5kg", "5 kg"),
    ("99 cents", "$0.99"),
    ("$5M", "$5 million"),
    ("2.50", "2.5"),
    ("220 °C", "220 degrees Celsius"),
    ("March 5, 2025", "5 March 2025"),
    ("2025-03-05", "March 5th, 2025"),
    ("15.03.2025", "2025-03-15"),
    ("3 PM", "15:00"),
    ("3:30 p.m.", "15:30"),
    ("14:30 Uhr", "14:30"),
    ("noon", "12:00"),
    ("3,5 kg", "3.5 kg"),
])
def test_same_value_same_key(a: str, b: str) -> None:
    assert keys(a) == keys(b) != []


@pytest.mark.parametrize(("a", "b"), [
    ("$25", "€25"), ("2.5 kg", "2.5 lb"), ("500 mg", "250 mg"), ("9 PM", "10 PM"),
    ("-18 °C", "18 °C"), ("1 km", "1 mi"), ("March 5", "March 6"), ("tomorrow", "today"),
    ("Sunday", "Saturday"), ("3.12.1", "3.12.2"), ("8 GB", "8 GiB"),
])
def test_different_values_differ(a: str, b: str) -> None:
    assert keys(a) != keys(b)


@pytest.mark.parametrize(("text", "expected"), [
    ("GPT-4o and utf-8 and H100 and x86_64", []),  # names, not numbers
    ("one of the best", []),
    ("no one knows", []),
    ("the one on the left", []),
    ("You need one server", ["|1"]),
    ("thousands of users", []),
    ("in 2024-2025", ["|2024", "|2025"]),
    ("version 3.12.1", ["v3.12.1"]),
    ("1st place", ["#|1"]),
    ("We may ship in May", []),  # "May" alone is too often the verb
    ("We ship in June", ["--06"]),
    ("会議は午後3時に始まります", ["|3"]),
    ("서울의 인구는 약 940만 명", ["|940"]),
    ("８ GB", ["byte|8e+09"]),  # full-width digits are digits
])
def test_edge_cases(text: str, expected: list[str]) -> None:
    assert keys(text) == expected


def test_spans_point_into_the_text() -> None:
    text = "Pay $49 by March 5, 2025 at 3 PM."
    for q in quantities(text):
        assert text[q.start:q.end].strip() == q.surface
