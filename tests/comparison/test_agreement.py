"""Which differences between two answers' facts make them different answers: swaps of
roles against lists and moved phrases, and names of several words (table-driven, on the
public `compare`)."""

from __future__ import annotations

import pytest

from proxy.comparison import compare
from proxy.comparison.agreement import compare_facts
from proxy.comparison.answer import build_answer
from proxy.comparison.comparator import Limits
from proxy.comparison.facts import extract
from proxy.comparison.policy import RoutePolicy


def label(a: str, b: str) -> tuple[str, tuple[str, ...]]:
    result = compare(build_answer(None, text=a), build_answer(None, text=b), RoutePolicy(),
                     Limits())
    return result.label, result.evidence


@pytest.mark.parametrize(("legacy", "orchestrator", "swapped"), [
    ("Alice reports to Bob.", "Bob reports to Alice.", "Alice ↔ Bob"),
    ("New York beat Los Angeles 3-1.", "Los Angeles beat New York 3-1.",
     "new york ↔ los angeles"),
    ("The Chicago Bulls beat the Miami Heat.", "The Miami Heat beat the Chicago Bulls.",
     "Chicago Bulls ↔ Miami Heat"),
    ("Move $500 from checking to savings.", "Move $500 from savings to checking.",
     "checking ↔ savings"),
    ("The score was 3 to 1.", "The score was 1 to 3.", "3 ↔ 1"),
])
def test_roles_that_trade_places_are_a_changed_fact(legacy: str, orchestrator: str,
                                                   swapped: str) -> None:
    found, evidence = label(legacy, orchestrator)
    assert found == "major"
    assert f"swapped: {swapped}" in evidence


@pytest.mark.parametrize(("legacy", "orchestrator"), [
    ("The capital of France is Paris.", "Paris is the capital of France."),
    ("Microsoft acquired GitHub in 2018.", "GitHub was acquired by Microsoft in 2018."),
    ("Paris and London are capitals.", "London and Paris are capitals."),
    ("The largest cities are Los Angeles and San Diego.",
     "The largest cities are San Diego and Los Angeles."),
    ("The train leaves at noon from platform 5.", "At noon the train leaves from platform 5."),
    ("Der Zug nach München fährt um 14:30 Uhr ab.", "Um 14:30 Uhr fährt der Zug nach München ab."),
])
def test_the_same_roles_in_other_words_or_order_are_not_a_swap(legacy: str,
                                                             orchestrator: str) -> None:
    assert label(legacy, orchestrator)[0] in ("identical", "equivalent", "minor")


def test_a_name_of_several_words_is_one_fact() -> None:
    names = [f.surface for f in extract("The office moved from Buenos Aires to "
                                        "San Francisco's Mission district.").facts
             if f.kind == "name"]
    assert names == ["Buenos Aires", "San Francisco", "Mission"]
    assert label("The capital of Argentina is Buenos Aires.",
                 "The capital of Argentina is Buenos Aires.")[0] == "identical"
    assert label("It moved to San Francisco.", "It moved to San Jose.") == (
        "major", ("San Francisco → San Jose",))


@pytest.mark.parametrize("legacy", [
    "The trip goes to Paris, which is lovely in spring.",
    "The trip goes to Paris, and Paris is lovely in spring.",
])
def test_an_unrelated_answer_shares_no_fact_however_often_a_name_is_said(legacy: str) -> None:
    result = compare(build_answer(None, text=legacy),
                     build_answer(None, text="you should eat more fruit and drink plenty of "
                                             "water every day."), RoutePolicy(), Limits())
    assert result.label == "major"


def test_a_shared_name_said_twice_still_counts_as_common_ground() -> None:
    a = extract("Paris is lovely, and Paris is old. Rome is far.")
    b = extract("Paris is lovely and old.")
    diff = compare_facts(a, b)
    assert diff.common
    assert [f.surface for f in diff.missing] == ["Rome"]
