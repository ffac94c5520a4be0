"""The structural JSON diff: key order, ignored keys, empties, numbers, bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.comparison.jsondiff import canonical_json, json_diff, leaf_count


@pytest.mark.parametrize(("a", "b", "fraction"), [
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}, 0.0),
    ({"a": 1, "b": 2}, {"a": 1, "b": 3}, 0.5),
    ({"a": 1}, {"a": 1.0}, 0.0),
    ({"a": True}, {"a": 1}, 1.0),
    ({"a": 1}, {"a": "1"}, 1.0),
    ([1, 2, 3], [1, 2, 3], 0.0),
    ([1, 2, 3], [3, 2, 1], 2 / 3),
    ([1, 2], [1, 2, 3, 4], 0.5),
    ({"a": {"x": 1, "y": 2}}, {}, 1.0),
    ({"a": {"x": 1, "y": 2}, "b": 1}, {"b": 1}, 2 / 3),
    ({"a": [1, 2]}, {"a": {"x": 1}}, 1.0),
    ({"a": None}, {}, 0.0),
    ({"a": []}, {"a": None}, 0.0),
    ({"a": {}}, {}, 0.0),
    ({}, {}, 0.0),
    (None, None, 0.0),
])
def test_fractions(a: Any, b: Any, fraction: float) -> None:
    assert json_diff(a, b).fraction == pytest.approx(fraction)


def test_ignored_keys_at_any_depth() -> None:
    a = {"id": "1", "data": {"created": 1, "value": 5}}
    b = {"id": "2", "data": {"created": 2, "value": 5}}
    assert json_diff(a, b, ignore_keys=frozenset({"id", "created"})).equal
    assert not json_diff(a, b).equal


def test_missing_equals_empty_can_be_turned_off() -> None:
    assert not json_diff({"a": None}, {}, missing_equals_empty=False).equal


def test_long_strings_count_their_text_divergence() -> None:
    a = {"summary": "The quick brown fox jumps over the lazy dog near the river."}
    b = {"summary": "The quick brown fox jumps over the lazy cat near the river."}
    diff = json_diff(a, b)
    assert 0 < diff.fraction < 0.2
    assert json_diff({"s": "short"}, {"s": "shorT"}).fraction == 1.0


def test_paths_name_the_difference() -> None:
    diff = json_diff({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}})
    assert diff.paths == ("$.a.b[1]",)


def test_node_budget_truncates_instead_of_walking_everything() -> None:
    a = {"items": [{"v": i} for i in range(1000)]}
    b = {"items": [{"v": i if i != 999 else -1} for i in range(1000)]}
    diff = json_diff(a, b, max_nodes=100)
    assert diff.truncated
    assert 0 < diff.fraction <= 1.0


def test_leaf_count_is_bounded() -> None:
    assert leaf_count(list(range(10_000)), limit=100) >= 100


def test_canonical_json_sorts_keys_and_handles_big_integers() -> None:
    assert canonical_json({"b": 1, "a": [2, {"d": 1, "c": 2}]}) == '{"a":[2,{"c":2,"d":1}],"b":1}'
    assert canonical_json({"n": 2**70}) == '{"n":1180591620717411303424}'


def test_canonical_json_makes_integral_numbers_integers_but_leaves_text_alone() -> None:
    assert canonical_json({"a": [21.0, -2.0, 1.5], "b": {"c": 3.0}}) == (
        '{"a":[21,-2,1.5],"b":{"c":3}}')
    assert canonical_json(21.0) == "21"
    assert canonical_json({"q": "see [1.0]"}) != canonical_json({"q": "see [1]"})
    assert canonical_json("1.0") == '"1.0"'
    assert canonical_json({"big": 1e300}) == '{"big":1e+300}'


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=20)


@given(_json, _json)
@settings(max_examples=300, deadline=None)
def test_properties(a: Any, b: Any) -> None:
    diff = json_diff(a, b)
    assert 0.0 <= diff.fraction <= 1.0
    assert json_diff(a, a).equal
    assert json_diff(b, a).fraction == pytest.approx(diff.fraction)
    if canonical_json(a) == canonical_json(b):
        assert diff.equal
