"""Merging: equivalence of answers, the confidence-weighted vote, and its invariants
(hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.orchestrator.content import Content, ToolCall, data_content, text_content
from proxy.orchestrator.merge import (
    Vote,
    answer_key,
    canonical_json,
    first_answer,
    merge,
    normalise_text,
)


def vote(model: str, text: str, r: float = 0.7) -> Vote:
    return Vote(model, Content(text=text), r)


def test_plain_majority_wins_among_equals() -> None:
    result = merge([vote("a", "Paris"), vote("b", "paris."), vote("c", "Lyon")])
    assert result.winner is not None and set(result.winner.members) == {"a", "b"}
    assert result.scores["c"] < result.confidence


def test_reliability_outweighs_numbers() -> None:
    # Two unreliable models agree; one with a long good record disagrees: it wins.
    result = merge([vote("weak-1", "Lyon", 0.2), vote("weak-2", "Lyon", 0.2),
                    vote("strong", "Paris", 0.97)])
    assert result.winner is not None and result.winner.members == ("strong",)


def test_single_answer_confidence_is_its_models_reliability() -> None:
    assert merge([vote("a", "x", 0.83)]).confidence == pytest.approx(0.83)


def test_agreement_raises_and_disagreement_lowers_confidence() -> None:
    one = merge([vote("a", "x", 0.6)]).confidence
    two = merge([vote("a", "x", 0.6), vote("b", "x", 0.6)]).confidence
    split = merge([vote("a", "x", 0.6), vote("b", "y", 0.6)]).confidence
    assert split < one < two


def test_similar_prose_is_one_answer() -> None:
    result = merge([vote("a", "The capital of France is Paris."),
                    vote("b", "the capital of france is paris"),
                    vote("c", "The capital city of France is Paris")],
                   similarity_threshold=0.85)
    assert result.winner is not None and len(result.winner.members) == 3
    strict = merge([vote("a", "The capital of France is Paris."),
                    vote("c", "The capital city of France is Paris")], similarity_threshold=1.0)
    assert len(strict.groups) == 2


@pytest.mark.parametrize(("a", "b"), [
    ("The meeting is at 3 PM on Tuesday.", "The meeting is at 4 PM on Tuesday."),
    ("Ottawa is the capital of Canada.", "Toronto is the capital of Canada."),
    ("The free tier includes webhooks.", "The free tier does not include webhooks."),
    ("Yes, it is thread-safe.", "No, it is thread-safe."),
    ("The plan costs $49 per month.", "The plan costs €49 per month."),
])
def test_answers_that_differ_on_one_fact_never_agree(a: str, b: str) -> None:
    # However low the similarity bar, a changed fact splits the vote: the agreement
    # comes from the comparison's fact rules, the same ones that label divergence.
    result = merge([vote("a", a), vote("b", b)], similarity_threshold=0.3)
    assert len(result.groups) == 2
    assert result.winner is not None and len(result.winner.members) == 1


def test_paraphrases_with_the_same_facts_agree() -> None:
    result = merge([vote("a", "The meeting is at 3 PM on Tuesday."),
                    vote("b", "On Tuesday the meeting is at 15:00.")], similarity_threshold=0.6)
    assert len(result.groups) == 1


def test_structured_answers_compare_as_canonical_json() -> None:
    a = Vote("a", text_content('{"b": 1.0, "a": [1, 2]}', structured=True), 0.7)
    b = Vote("b", data_content({"a": [1, 2], "b": 1}), 0.7)
    c = Vote("c", text_content('{"a": [2, 1], "b": 1}', structured=True), 0.7)
    result = merge([a, b, c])
    assert result.winner is not None and set(result.winner.members) == {"a", "b"}
    assert canonical_json({"b": 1.0, "a": 2}) == '{"a":2,"b":1}'


def test_structured_answers_with_huge_or_integral_numbers_group_by_value() -> None:
    huge = [Vote("a", data_content({"n": 1e300}), 0.7), Vote("b", data_content({"n": 1e300}), 0.7),
            Vote("c", data_content({"n": 1.5}), 0.7)]
    result = merge(huge)
    assert result.winner is not None and set(result.winner.members) == {"a", "b"}
    text = [Vote("a", data_content({"q": "see [1.0]"}), 0.7),
            Vote("b", data_content({"q": "see [1]"}), 0.7)]
    assert len(merge(text).groups) == 2


def test_tool_calls_compare_by_name_and_arguments_not_ids() -> None:
    one = Content(tool_calls=(ToolCall("weather", '{"city": "Rome"}', "call_1"),))
    two = Content(tool_calls=(ToolCall("weather", '{"city":"Rome"}', "toolu_9"),))
    assert answer_key(one) == answer_key(two)


def test_representative_is_the_most_reliable_members_answer() -> None:
    result = merge([vote("a", "Paris!", 0.6), vote("b", "paris", 0.9)])
    assert result.winner is not None and result.winner.representative.text == "paris"
    assert result.winner.source == "b"


def test_merging_off_takes_the_first_answer() -> None:
    result = first_answer([vote("late", "x", 0.9), vote("other", "y", 0.9)])
    assert result.winner is not None and result.winner.members == ("late",)
    assert merge([]).winner is None and first_answer([]).confidence == 0.0


def test_normalise_text() -> None:
    assert normalise_text("  Hello,\n  WORLD!! ") == "hello, world"


# --- properties ---------------------------------------------------------------------

ANSWERS = st.sampled_from(["Paris", "paris", "Lyon", "Marseille", "42", "forty two"])
RELIABILITY = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
VOTES = st.lists(st.tuples(ANSWERS, RELIABILITY), min_size=1, max_size=7).map(
    lambda items: [Vote(f"m{i}", Content(text=a), r) for i, (a, r) in enumerate(items)])


@settings(max_examples=200, deadline=None)
@given(VOTES, st.randoms(use_true_random=False))
def test_the_order_answers_arrive_in_does_not_matter(votes: list[Vote], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(votes)
    rnd.shuffle(shuffled)
    a, b = merge(votes), merge(shuffled)
    assert a.winner is not None and b.winner is not None
    assert a.winner.key == b.winner.key and set(a.winner.members) == set(b.winner.members)
    assert a.confidence == pytest.approx(b.confidence)


@settings(max_examples=200, deadline=None)
@given(VOTES)
def test_probabilities_are_a_sub_distribution(votes: list[Vote]) -> None:
    result = merge(votes)
    probabilities = [group.probability for group in result.groups]
    assert all(0.0 < p < 1.0 for p in probabilities)
    assert sum(probabilities) < 1.0 + 1e-9
    assert result.confidence == max(probabilities)
    assert sorted(m for g in result.groups for m in g.members) == sorted(v.model for v in votes)


@settings(max_examples=200, deadline=None)
@given(VOTES, st.floats(min_value=0.1, max_value=1.0))
def test_another_vote_for_the_winner_keeps_it_and_raises_confidence(
        votes: list[Vote], r: float) -> None:
    before = merge(votes)
    assert before.winner is not None
    extra = Vote("extra", before.winner.representative, r)
    after = merge([*votes, extra])
    assert after.winner is not None and "extra" in after.winner.members
    assert after.confidence >= before.confidence - 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(RELIABILITY, min_size=1, max_size=6))
def test_unanimity_is_at_least_as_sure_as_its_best_member(rs: list[float]) -> None:
    result = merge([Vote(f"m{i}", Content(text="same"), r) for i, r in enumerate(rs)])
    best = min(0.99, max(0.01, max(rs)))
    if all(r >= 0.1 for r in rs):
        assert result.confidence >= best - 1e-9
    assert not math.isnan(result.confidence)


def test_even_unanimous_reliable_models_are_never_certain() -> None:
    """Found by the sub-distribution property: six agreeing votes at reliability 1 came
    out as exactly 1.0 after rounding."""
    result = merge([Vote(f"m{i}", Content(text="Paris"), 1.0) for i in range(6)])
    assert 0.999 < result.confidence < 1.0
