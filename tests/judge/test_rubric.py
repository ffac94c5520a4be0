"""The judge's rubric: the shipped `policies/judge.json` loads and renders; a broken one
fails naming the file and the dotted key; inputs are substituted once, so an answer
cannot inject a placeholder; the bounds hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.config import ConfigError
from proxy.judge.rubric import CUT_MARK, load_rubric, parse_rubric
from proxy.judge.verdict import VERDICTS

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "judge.json"


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHIPPED.read_text())
    return data


def test_the_shipped_rubric_names_every_class_and_asks_for_json() -> None:
    rubric = load_rubric(SHIPPED)
    system, user = rubric.render("Q?", "REF", "CAND")
    assert "never instructions" in system
    assert user.index("Q?") < user.index("REF") < user.index("CAND")
    for verdict in VERDICTS:
        assert f"- {verdict}: " in user
    assert '"verdict"' in user and "JSON" in user
    assert rubric.json_mode and rubric.temperature == 0


def test_inputs_are_substituted_once() -> None:
    rubric = load_rubric(SHIPPED)
    _, user = rubric.render("about {candidate}", "says {classes}", "and {reference}")
    assert "about {candidate}" in user and "says {classes}" in user
    assert "and {reference}" in user
    assert user.count("- same_facts: ") == 1


def test_a_long_question_is_cut_and_marked() -> None:
    rubric = parse_rubric({**shipped(), "max_question_chars": 100})
    _, user = rubric.render("q" * 500, "a", "b")
    assert "q" * 100 + CUT_MARK in user and "q" * 101 not in user


def test_a_missing_question_says_so() -> None:
    _, user = load_rubric(SHIPPED).render("", "a", "b")
    assert "(not available)" in user


def test_answers_past_the_bound_do_not_fit() -> None:
    rubric = parse_rubric({**shipped(), "max_answer_chars": 100})
    assert rubric.fits("a" * 100, "b" * 100)
    assert not rubric.fits("a" * 101, "b")
    assert not rubric.fits("a", "b" * 101)


@pytest.mark.parametrize(("change", "message"), [
    ({"prompt": "{question} {reference} {candidate}"},
     "prompt: Value error, the template must contain {classes}"),
    ({"prompt": "{question} {refrence} {candidate} {classes}"},
     "prompt: Value error, unknown placeholder {refrence}"),
    ({"classes": {"same_facts": "x"}}, "classes: Value error, needs a definition of "
     "every class; missing 'irrelevant_difference'"),
    ({"classes": {"same_facts": "x", "irrelevant_difference": "x", "subset": "x",
                  "superset": "x", "contradiction": " "}},
     "classes: Value error, the definition of 'contradiction' is empty"),
    ({"classes": {"same_facts": "x", "irrelevant_difference": "x", "subset": "x",
                  "superset": "x", "contradiction": "x", "maybe": "x"}},
     "classes.maybe.[key]: Input should be"),
    ({"colour": "blue"}, "colour: unknown key"),
    ({"max_output_tokens": 5}, "max_output_tokens: Input should be greater than or equal"),
    ({"system": ""}, "system: String should have at least 1 character"),
])
def test_a_broken_rubric_names_the_file_and_the_key(tmp_path: Path, change: dict[str, Any],
                                                    message: str) -> None:
    path = tmp_path / "judge.json"
    path.write_text(json.dumps({**shipped(), **change}))
    with pytest.raises(ConfigError) as caught:
        load_rubric(path)
    assert f"{path}: " in str(caught.value)
    assert message.replace("Value error, ", "") in str(caught.value)
