"""Prose facts: what counts as a fact, what is only wording, and how two answers'
facts are compared (changed, missing, added, flipped)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.comparison.agreement import compare_facts
from proxy.comparison.facts import extract
from proxy.comparison.prose import polarity, refused
from proxy.comparison.snippet import snippets, token_change, tokens


def diff(a: str, b: str, **options: object):  # type: ignore[no-untyped-def]
    return compare_facts(extract(a), extract(b), **options)  # type: ignore[arg-type]


def names(text: str) -> set[str]:
    return {f.surface for f in extract(text).facts if f.kind == "name"}


@pytest.mark.parametrize(("text", "expected"), [
    ("The capital of France is Paris.", {"France", "Paris"}),
    ("Paris is the capital of France.", {"Paris", "France"}),  # a name at a sentence start
    ("Restart the service. Then check the logs.", set()),  # common words at a start
    ("Store the password in Vault.", {"Vault"}),  # a verb followed by its object
    ("Generally, it works. Typically it does.", set()),  # -ly adverbs
    ("Click Save, then Publish.", {"Save", "Publish"}),  # UI labels mid-sentence
    ("I think NVIDIA H100 and utf-8 work.", {"NVIDIA", "H100", "utf-8"}),
    ("La capitale de l'Australie est Canberra.", {"Australie", "Canberra"}),
    ("Yes, Python's lists are mutable.", {"Python"}),
    ("北京是中国的首都。", set()),
])
def test_names(text: str, expected: set[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(("a", "b"), [
    ("The capital of France is Paris.", "Paris is the capital of France."),
    ("The capital of France is Paris.", "the capital of france is paris"),
    ("The team has five engineers.", "The team has 5 engineers."),
    ("It costs $3.99.", "It costs 3.99 USD."),
    ("**Paris** is the capital.", "Paris is the capital."),
    ("1. Install it.\n2. Run it.", "- Install it.\n- Run it."),
    ("It is not supported.", "It isn't supported."),
    ("It doesn't support Windows.", "Windows isn't supported."),
    ("The café is in São Paulo.", "The cafe is in Sao Paulo."),
    ("Use `x = 1  # one`.", "Use `x = 1  # set x`."),
    ("See https://Example.com/docs/.", "See https://example.com/docs"),
    ("中国的首都是北京。", "北京是中国的首都。"),
])
def test_same_facts(a: str, b: str) -> None:
    result = diff(a, b)
    assert result.same, result.evidence()


@pytest.mark.parametrize(("a", "b", "evidence"), [
    ("The capital of France is Paris.", "The capital of France is Lyon.", "Paris → Lyon"),
    ("Ottawa is the capital.", "Toronto is the capital.", "Ottawa → Toronto"),
    ("It costs $49.", "It costs $59.", "$49 → $59"),
    ("The fee is €25.", "The fee is $25.", "€25 → $25"),
    ("Take 500 mg.", "Take 250 mg.", "500 mg → 250 mg"),
    ("It arrives tomorrow.", "It arrives today.", "tomorrow → today"),
    ("Leaves at 14:35.", "Leaves at 14:53.", "14:35 → 14:53"),
    ("There are seven days.", "There are six days.", "seven days → six days"),
    ("Email billing@acme.io.", "Email support@acme.io.", "billing@acme.io → support@acme.io"),
    ('Send "no-store".', 'Send "no-cache".', "no-store → no-cache"),
    ("Use `a >= 18`.", "Use `a > 18`.", "a >= 18 → a > 18"),
    ("The plan includes API access.", "The plan does not include API access.",
     "include → not include"),
    ("Tokens are stored in plain text.", "Tokens are never stored in plain text.",
     "stored → not stored"),
    ("You can return it without a receipt.", "You can return it with a receipt.",
     "not receipt → receipt"),
    ("Yes, it works.", "No, it does not work.", "yes → no"),
    ("北京是中国的首都。", "上海是中国的首都。", "北京 → 上海"),
])
def test_changed_facts(a: str, b: str, evidence: str) -> None:
    result = diff(a, b)
    assert result.changed
    assert evidence in result.evidence()


def test_repeated_number_counts() -> None:
    a = "Wait 24 hours. After 24 hours, drop the user."
    b = "Wait 12 hours. After 24 hours, drop the user."
    assert diff(a, b).changed


def test_subset_and_superset_are_not_contradictions() -> None:
    subset = diff("The meeting is at 3 PM on Tuesday in room 4B.",
                  "The meeting is at 3 PM on Tuesday.")
    assert not subset.changed and subset.missing and not subset.added and subset.common
    superset = diff("Paris.", "The capital of France is Paris.")
    assert not superset.changed and superset.added and superset.common


def test_a_cut_answer_is_not_blamed_for_what_it_did_not_reach() -> None:
    result = diff("The price is $10. Shipping is $5.", "The price is $10.", b_cut=True)
    assert result.same


def test_tolerance_applies_to_prose_numbers() -> None:
    assert diff("Confidence 0.91.", "Confidence 0.92.").changed
    assert diff("Confidence 0.91.", "Confidence 0.92.", tolerance=0.02).same


@pytest.mark.parametrize(("text", "expected"), [
    ("Yes, you can.", "yes"), ("No, you can't.", "no"), ("**Yes** — it works.", "yes"),
    ("Sure! Here it is.", "yes"), ("No problem, here it is.", None), ("Nope.", "no"),
    ("Oui, c'est possible.", "yes"), ("Nein.", "no"), ("是的，可以。", "yes"),
    ("Yesterday it rained.", None), ("You can.", None),
])
def test_polarity(text: str, expected: str | None) -> None:
    assert polarity(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("i'm sorry, but i can't help with that request.", True),
    ("i can't assist with that.", True),
    ("as an ai, i must decline.", True),
    ("lo siento, no puedo ayudarte con eso.", True),
    ("i can't give medical advice, but the usual adult dose is 200 to 400 mg every 4 to 6 "
     "hours, with food.", False),
    ("you cannot undo a force push.", False),
])
def test_refusal(text: str, expected: bool) -> None:
    assert refused(text) is expected


def test_code_tokens_ignore_whitespace_and_comments() -> None:
    assert tokens("x=a+b  # sum", "python") == tokens("x = a + b", "python")
    assert tokens("if (a <= b) { go(); } // why", "js") == tokens("if(a<=b){go();}", "js")
    assert tokens("#include <stdio.h>", "c") != tokens("", "c")
    found = snippets("Run `ls -la`.\n\n```sh\necho hi\n```\n")
    assert [s.block for s in found] == [False, True]
    assert token_change(("a", ">=", "18"), ("a", ">", "18")) == "a >= 18 → a > 18"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_handled(text: str) -> None:
    assert diff(text, text).same
    other = diff(text, text.upper() + " 42")  # never raises, whatever the script
    assert all(len(item) < 1000 for item in other.evidence())


@pytest.mark.parametrize(("a", "b"), [
    ("The function returns None if the key is missing.",
     "If the key is missing, the function returns None."),
    ("## Installation Steps\nRun the installer.", "## How to Install\nRun the installer."),
    ("You'll need Node 18 or newer.", "You will need Node 18 or newer."),
])
def test_no_contradiction_from_typography(a: str, b: str) -> None:
    assert not diff(a, b).changed, diff(a, b).evidence()


def test_a_yes_after_a_lead_in_is_a_yes() -> None:
    assert polarity("In short: yes.") == "yes"
    assert polarity("Answers vary.") is None
