"""The judge's five classes, reading them from a model's reply, and whether a verdict
agrees with the rules' label.

Layer: pure core.

The classes are those of the well-known factuality graders (OpenAI evals' "fact"
grader, FActScore-style comparisons), with the orchestrator's answer as the candidate
and legacy's as the reference:

- `same_facts`: the candidate states the same facts as the reference;
- `irrelevant_difference`: they differ, but not in anything that matters for the facts;
- `subset`: the candidate states only part of the reference's facts, contradicting none;
- `superset`: the candidate states all of them and more, contradicting none;
- `contradiction`: at least one fact disagrees.

A reply is read robustly: a JSON object (alone, in a code fence, or amid prose) whose
`verdict` is one of the classes (case, spaces and hyphens forgiven: "Same facts"), or a
reply that is nothing but a class name. Anything else — no class, an unknown one, an
empty reply — raises `InvalidVerdict`: a judge failure, counted, never a verdict.

Agreement with the rules (`agreement`): each class is consistent with some of the rules'
labels, and a verdict outside them is a disagreement with a direction:

    verdict                          consistent rules labels
    same_facts, irrelevant_difference   identical, equivalent, minor
    subset, superset                    minor, major
    contradiction                       major

`rules_lenient`: the rules said the answers differ less than the judge found (e.g.
`equivalent` where the judge sees a contradiction: the rules missed a changed fact, the
dangerous direction, since a ramp may promote on it). `rules_strict`: the rules said
`major` where the judge sees the same facts (a false alarm). `minor` sits in between:
it agrees with every class but `contradiction`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from proxy.comparison.answer import parse_json_text

Verdict = Literal["same_facts", "irrelevant_difference", "subset", "superset",
                  "contradiction"]
VERDICTS: tuple[Verdict, ...] = ("same_facts", "irrelevant_difference", "subset",
                                 "superset", "contradiction")
Agreement = Literal["agree", "rules_lenient", "rules_strict"]
AGREEMENTS: tuple[Agreement, ...] = ("agree", "rules_lenient", "rules_strict")

CONSISTENT: Mapping[Verdict, frozenset[str]] = {
    "same_facts": frozenset({"identical", "equivalent", "minor"}),
    "irrelevant_difference": frozenset({"identical", "equivalent", "minor"}),
    "subset": frozenset({"minor", "major"}),
    "superset": frozenset({"minor", "major"}),
    "contradiction": frozenset({"major"}),
}

MAX_REASON = 300
_MAX_OBJECTS = 20  # `{` positions tried when the JSON object is buried in prose


class InvalidVerdict(ValueError):
    """The reply names none of the classes (or is not readable): a judge failure."""


def agreement(label: str, verdict: Verdict) -> Agreement:
    """How the rules' label stands against the judge's verdict (see the module table)."""
    if label in CONSISTENT[verdict]:
        return "agree"
    return "rules_strict" if label == "major" else "rules_lenient"


def read_verdict(reply: str) -> tuple[Verdict, str]:
    """The verdict and the judge's own reason (may be ""), or `InvalidVerdict`."""
    text = reply.strip()
    if not text:
        raise InvalidVerdict("empty reply")
    bare = _verdict_of(text)
    if bare is not None:
        return bare, ""
    found = _object(text)
    if found is None:
        raise InvalidVerdict("no JSON object with a verdict in the reply")
    value = next((v for k, v in found.items() if k.strip().lower() == "verdict"), None)
    verdict = _verdict_of(value) if isinstance(value, str) else None
    if verdict is None:
        raise InvalidVerdict("the verdict is not one of " + ", ".join(VERDICTS))
    reason = next((v for k, v in found.items() if k.strip().lower() == "reason"), "")
    return verdict, (reason if isinstance(reason, str) else "")[:MAX_REASON]


def _verdict_of(value: str) -> Verdict | None:
    key = value.strip().strip("\"'`.*").strip().lower().replace("-", "_").replace(" ", "_")
    for verdict in VERDICTS:
        if key == verdict:
            return verdict
    return None


def _object(text: str) -> dict[str, Any] | None:
    """The first JSON object in the text that has a `verdict` key."""
    _, whole = parse_json_text(text)  # alone or in a code fence
    if _has_verdict(whole):
        return whole  # type: ignore[no-any-return]
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(_MAX_OBJECTS):
        if start < 0:
            return None
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if _has_verdict(value):
            return value  # type: ignore[no-any-return]
        start = text.find("{", start + 1)
    return None


def _has_verdict(value: object) -> bool:
    return isinstance(value, dict) and any(
        isinstance(key, str) and key.strip().lower() == "verdict" for key in value)
