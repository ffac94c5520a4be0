"""Every comparison carries one reason from the fixed set and bounded evidence; the
policy's weights, tolerance, sets and prose_facts steer the decisive rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.comparison import REASONS, Comparison, compare, parse_policy, same_answer
from proxy.comparison.answer import Answer, build_answer, tool_call
from proxy.comparison.finding import MAX_EVIDENCE, MAX_ITEM
from proxy.comparison.policy import RoutePolicy


def text(value: str, finish: str | None = "stop", **extra: Any) -> Answer:
    return build_answer("openai_chat", text=value, finish=finish, **extra)


def calls(*items: tuple[str, Any], finish: str = "tool_calls") -> Answer:
    return build_answer("openai_chat", tool_calls=[tool_call(n, a) for n, a in items],
                        finish=finish)


def route(**override: Any) -> RoutePolicy:
    return parse_policy({"routes": {"/r": override}}).for_route("/r")


CASES: list[tuple[str, Answer, Answer, str, str]] = [
    ("identical", text("Paris."), text("Paris."), "identical", "identical"),
    ("error", text("Paris."), Answer("openai_chat", error="server_error"), "error", "major"),
    ("empty", text("Paris."), text(""), "empty", "major"),
    ("refusal", text("Paris is the capital."), text("I'm sorry, but I can't help with that."),
     "refusal", "major"),
    ("both refuse", text("I can't help with that."),
     text("Sorry, I cannot assist with this request."), "refusal", "equivalent"),
    ("tool call", calls(("f", {"a": 1})), calls(("f", {"a": 2})), "tool_call_changed", "major"),
    ("finish", text("Paris is"), text("Paris is", finish="length"), "finish_changed", "major"),
    ("format", text('{"city": "Paris"}'), text("The city is Paris."), "format_changed", "major"),
    ("key missing", text('{"a": 1, "b": 2}'), text('{"a": 1}'), "json_key_missing", "major"),
    ("key added", text('{"a": 1}'), text('{"a": 1, "b": 2}'), "json_key_added", "major"),
    ("value", text('{"a": 1}'), text('{"a": 2}'), "json_value_changed", "major"),
    ("fact", text("It costs $49."), text("It costs $59."), "fact_changed", "major"),
    ("missing", text("At 3 PM in room 4B."), text("At 3 PM."), "fact_missing", "minor"),
    ("added", text("At 3 PM."), text("At 3 PM in room 4B."), "fact_added", "minor"),
    ("embedding", Answer("openai_embeddings", embeddings=([1.0, 0.0],)),
     Answer("openai_embeddings", embeddings=([0.0, 1.0],)), "embedding_changed", "major"),
    ("edit", text("The quick fix is to restart the worker."),
     text("A quick fix: restart the worker."), "text_edit", "minor"),
    ("envelope", build_answer("openai_chat", text="x", document={"a": 1}),
     build_answer("openai_chat", text="x", document={"a": 2}), "envelope_changed",
     "equivalent"),
]


def test_tool_call_arguments_differing_only_inside_a_string_are_not_identical() -> None:
    result = compare(calls(("q", {"sql": "select [1.0]"})), calls(("q", {"sql": "select [1]"})))
    assert result.label != "identical"
    assert result.reason == "tool_call_changed"
    assert compare(calls(("q", {"n": 1.0})), calls(("q", {"n": 1}))).label == "identical"


@pytest.mark.parametrize(("name", "a", "b", "reason", "label"), CASES,
                         ids=[case[0] for case in CASES])
def test_every_reason(name: str, a: Answer, b: Answer, reason: str, label: str) -> None:
    result = compare(a, b)
    assert (result.reason, result.label) == (reason, label), result


def test_the_cases_cover_the_reason_set() -> None:
    assert {case[3] for case in CASES} == set(REASONS)


def test_evidence_is_bounded_and_kept_apart_from_the_rest() -> None:
    left = {f"key{i}": "x" * 500 for i in range(50)}
    right = {f"key{i}": "y" * 500 for i in range(50)}
    result = compare(text(orjson.dumps(left).decode()), text(orjson.dumps(right).decode()))
    assert result.reason == "json_value_changed"
    assert 0 < len(result.evidence) <= MAX_EVIDENCE
    assert all(len(item) <= MAX_ITEM for item in result.evidence)
    plain = result.as_dict()
    assert "evidence" not in plain and "x" * 20 not in orjson.dumps(plain).decode()
    assert result.as_dict(evidence=True)["evidence"] == list(result.evidence)
    assert not any("xxx" in reason for reason in result.reasons)


def test_evidence_names_path_and_values() -> None:
    result = compare(text('{"gpu": "H100", "price": 2.49}'), text('{"gpu": "H100", "price": 3.99}'))
    assert result.evidence == ("$.price: 2.49 → 3.99",)
    missing = compare(text('{"gpu": "H100", "region": "us-east"}'), text('{"gpu": "H100"}'))
    assert missing.evidence == ('$.region: "us-east" → (missing)',)
    call = compare(calls(("get_weather", {"city": "Paris", "unit": "celsius"})),
                   calls(("get_weather", {"city": "Paris", "unit": "fahrenheit"})))
    assert call.evidence == ('get_weather $.unit: "celsius" → "fahrenheit"',)


def test_old_style_comparisons_get_a_reason() -> None:
    assert Comparison("major", 0.9).reason == "text_edit"
    assert Comparison("identical", 0.0).reason == "identical"
    assert Comparison("major", 1.0, reason="fact_changed").reason == "fact_changed"


def test_a_weight_of_zero_switches_a_rule_off() -> None:
    cut = (text("Paris is the capital."), text("Paris is the capital.", finish="length"))
    assert compare(*cut).label == "major"
    assert compare(*cut, route(weights={"finish_reason": 0})).label == "equivalent"


def test_prose_facts_can_be_switched_off_per_route() -> None:
    pair = (text("The capital of France is Paris."), text("The capital of France is Lyon."))
    assert compare(*pair).label == "major"
    relaxed = compare(*pair, route(prose_facts=False))
    assert relaxed.label in ("equivalent", "minor") and relaxed.reason == "text_edit"


def test_number_tolerance_and_sets_apply_to_tool_arguments() -> None:
    a = calls(("rank", {"score": 0.91, "tags": ["a", "b"]}))
    b = calls(("rank", {"score": 0.92, "tags": ["b", "a"]}))
    assert compare(a, b).label == "major"
    lenient = compare(a, b, route(number_tolerance=0.02, json_sets=["$.tags"]))
    assert lenient.label == "equivalent"


def test_set_paths_with_any_index() -> None:
    a = text('{"items": [{"labels": ["x", "y"]}, {"labels": ["z"]}]}')
    b = text('{"items": [{"labels": ["y", "x"]}, {"labels": ["z"]}]}')
    assert compare(a, b).label == "major"
    assert compare(a, b, route(json_sets=["$.items[*].labels"])).label == "equivalent"
    c = text('{"items": [{"labels": ["y", "w"]}, {"labels": ["z"]}]}')
    changed = compare(a, c, route(json_sets=["$.items[*].labels"]))
    assert changed.reason == "json_value_changed"


def test_noise_floor_resamples_get_the_same_rules() -> None:
    first, resample = text("Refunds take 5 business days."), text("Refunds take 7 business days.")
    assert compare(first, resample).label == "major"


@pytest.mark.parametrize(("a", "b", "agree"), [
    ("The capital of France is Paris.", "Paris is the capital of France.", True),
    ("The meeting is at 3 PM.", "The meeting is at 4 PM.", False),
    ("Paris is the capital.", "Lyon is the capital.", False),
    ("It is supported.", "It is not supported.", False),
    ("The answer is 42.", "42", False),
])
def test_same_answer(a: str, b: str, agree: bool) -> None:
    assert same_answer(build_answer(None, text=a), build_answer(None, text=b),
                       threshold=0.5) is agree


@pytest.mark.parametrize(("a", "b"), [
    ("The museum is closed on Mondays.", "The museum is open on Mondays."),
    ("Prices increased by 3% last year.", "Prices decreased by 3% last year."),
    ("Take the pill before meals.", "Take the pill after meals."),
    ("The endpoint is available in all regions.", "The endpoint is unavailable in all regions."),
    ("Set the flag to true to enable caching.", "Set the flag to false to enable caching."),
    ("The lower bound is 5 and the upper bound is 10.",
     "The lower bound is 10 and the upper bound is 5."),
    ("Python lists are ordered; sets are unordered.",
     "Python lists are unordered; sets are ordered."),
    ("Use the --force flag to overwrite.", "Use the --force-with-lease flag to overwrite."),
    ("Run `pip install requests`.", "Run `pip install request`."),
    ("Edit /etc/nginx/nginx.conf and reload.", "Edit /etc/nginx/sites-enabled/default and reload."),
])
def test_one_word_that_turns_the_answer_around_is_major(a: str, b: str) -> None:
    result = compare(text(a), text(b))
    assert (result.label, result.reason) == ("major", "fact_changed"), result


@pytest.mark.parametrize(("a", "b", "label"), [
    ("Mix flour, sugar and eggs.", "Mix flour, sugar and butter.", "minor"),
    ("Restart the service to apply it.", "Reboot the service to apply it.", "minor"),
    ("Paris is the capital of France.", "The capital of France is Paris.", "equivalent"),
    ("The service is not available yet.", "The service isn't available yet.", "equivalent"),
    ("Thanks for asking! The answer is 7.", "The answer is 7.", "equivalent"),
])
def test_replaced_words_are_at_least_minor_moved_ones_are_not(a: str, b: str,
                                                              label: str) -> None:
    assert compare(text(a), text(b)).label == label


def test_shared_paragraphs_do_not_hide_or_invent_a_change() -> None:
    intro = "Here is how to rotate the key.\n\nOpen the console and choose Keys."
    a = text(intro + "\n\nKeep the old key for 24 hours.\n\nDocker and Helm both work.")
    b = text(intro + "\n\nKeep the old key for 12 hours.\n\nDocker and Helm both work.")
    changed = compare(a, b)
    assert (changed.label, changed.evidence) == ("major", ("24 hours → 12 hours",))
    mentioned = text("Use Docker.\n\nDocker runs it.\n\nIt takes 5 minutes.")
    elsewhere = text("Use Docker.\n\nIt runs there.\n\nIt takes 5 minutes.")
    assert compare(mentioned, elsewhere).reason != "fact_changed"
