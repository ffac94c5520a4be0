"""Reading a judge's reply (robustly, and never guessing), and the agreement of a verdict
with the rules' label."""

from __future__ import annotations

import pytest

from proxy.comparison import LABELS
from proxy.judge.verdict import (
    AGREEMENTS,
    CONSISTENT,
    VERDICTS,
    InvalidVerdict,
    Verdict,
    agreement,
    read_verdict,
)


@pytest.mark.parametrize(("reply", "verdict", "reason"), [
    ('{"reason": "Lyon is not Paris", "verdict": "contradiction"}', "contradiction",
     "Lyon is not Paris"),
    ('{"verdict": "same_facts"}', "same_facts", ""),
    ('```json\n{"reason": "none", "verdict": "subset"}\n```', "subset", "none"),
    ('```\n{"verdict": "superset"}\n```', "superset", ""),
    ('Here is my answer:\n{"reason": "adds a date", "verdict": "superset"}\nThanks.',
     "superset", "adds a date"),
    ('{"Verdict": "Same Facts", "Reason": "ok"}', "same_facts", "ok"),
    ('{"verdict": "irrelevant-difference"}', "irrelevant_difference", ""),
    ('{"verdict": " CONTRADICTION "}', "contradiction", ""),
    ("contradiction", "contradiction", ""),
    ('"subset"', "subset", ""),
    ("Irrelevant difference.", "irrelevant_difference", ""),
    ('{"note": {"x": 1}} then {"verdict": "subset"}', "subset", ""),
    ('{"reason": 7, "verdict": "subset"}', "subset", ""),
])
def test_a_reply_naming_one_class_is_a_verdict(reply: str, verdict: str,
                                               reason: str) -> None:
    assert read_verdict(reply) == (verdict, reason)


@pytest.mark.parametrize("reply", [
    "",
    "   ",
    "Both answers look fine to me.",
    "It is a contradiction, not same_facts.",
    '{"verdict": "mostly_same"}',
    '{"verdict": ["subset"]}',
    '{"verdict": null}',
    '{"reason": "no verdict key"}',
    '{"verdict": "subset"',  # cut off
    "[\"subset\"]",
    "A",
])
def test_anything_else_is_invalid_never_a_guess(reply: str) -> None:
    with pytest.raises(InvalidVerdict):
        read_verdict(reply)


def test_the_reason_is_bounded() -> None:
    _, reason = read_verdict('{"reason": "' + "x" * 5000 + '", "verdict": "subset"}')
    assert len(reason) == 300


@pytest.mark.parametrize(("label", "verdict", "expected"), [
    ("identical", "same_facts", "agree"),
    ("equivalent", "same_facts", "agree"),
    ("equivalent", "irrelevant_difference", "agree"),
    ("minor", "same_facts", "agree"),
    ("minor", "subset", "agree"),
    ("minor", "superset", "agree"),
    ("major", "subset", "agree"),
    ("major", "contradiction", "agree"),
    ("equivalent", "contradiction", "rules_lenient"),
    ("equivalent", "subset", "rules_lenient"),
    ("identical", "superset", "rules_lenient"),
    ("minor", "contradiction", "rules_lenient"),
    ("major", "same_facts", "rules_strict"),
    ("major", "irrelevant_difference", "rules_strict"),
])
def test_agreement_of_a_verdict_with_the_rules_label(label: str, verdict: Verdict,
                                                     expected: str) -> None:
    assert agreement(label, verdict) == expected


def test_every_label_and_verdict_pair_has_an_agreement() -> None:
    for label in LABELS:
        for verdict in VERDICTS:
            assert agreement(label, verdict) in AGREEMENTS


def test_only_major_can_be_too_strict_and_contradiction_needs_major() -> None:
    strict = {(label, verdict) for label in LABELS for verdict in VERDICTS
              if agreement(label, verdict) == "rules_strict"}
    assert {label for label, _ in strict} == {"major"}
    assert CONSISTENT["contradiction"] == {"major"}
    assert all("minor" in CONSISTENT[verdict] for verdict in VERDICTS
               if verdict != "contradiction")
