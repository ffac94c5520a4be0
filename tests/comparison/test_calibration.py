"""The calibration set: every labelled pair is well formed and detected in its shape;
the comparator gets the documented share right (at least 95 %) and never labels a pair
whose facts differ identical or equivalent."""

from __future__ import annotations

from collections import Counter

import pytest

from proxy.comparison import LABELS, REASONS
from tests.comparison.calibration import DATA, FIELDS, OPTIONAL, Pair, pairs

PAIRS = pairs()
AIM = 0.95


def test_the_set_is_big_and_covers_the_categories() -> None:
    assert len(PAIRS) >= 80
    categories = Counter(p.data["category"] for p in PAIRS)
    for needed in ("prose-number", "prose-money", "prose-date", "prose-unit", "prose-name",
                   "prose-negation", "prose-yesno", "paraphrase", "formatting", "subset",
                   "superset", "refusal", "code", "json", "tool-call", "truncation",
                   "non-english"):
        assert categories[needed] >= 1, needed
    shapes = {p.shapes[0] for p in PAIRS}
    assert {"text", "openai_chat", "anthropic_messages", "openai_responses", "json"} <= shapes
    assert set(Counter(p.expected for p in PAIRS)) == set(LABELS)


@pytest.mark.parametrize("pair", PAIRS, ids=[p.name for p in PAIRS])
def test_pair_is_well_formed(pair: Pair) -> None:
    assert FIELDS <= set(pair.data) <= FIELDS | OPTIONAL, sorted(pair.data)
    assert pair.expected in LABELS
    assert pair.shapes == (pair.data["shape"], pair.data["shape"])
    assert pair.data["why"].strip()
    if pair.expected == "major":
        assert pair.data["facts_differ"]


def test_accuracy_meets_the_aim_and_no_fact_change_passes_as_equivalent() -> None:
    wrong, hidden = [], []
    for pair in PAIRS:
        result = pair.compare()
        assert result.reason in REASONS
        if result.label != pair.expected:
            wrong.append(f"{pair.name}: expected {pair.expected}, got {result.label} "
                         f"({result.reason}, {result.score})")
        if pair.data["facts_differ"] and result.label in ("identical", "equivalent"):
            hidden.append(f"{pair.name}: {result.label} ({result.reason})")
    assert not hidden, "fact changes labelled identical/equivalent:\n" + "\n".join(hidden)
    accuracy = 1 - len(wrong) / len(PAIRS)
    assert accuracy >= AIM, f"{accuracy:.1%} right; wrong:\n" + "\n".join(wrong)


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.expected == "major"],
                         ids=[p.name for p in PAIRS if p.expected == "major"])
def test_a_major_pair_carries_evidence_and_is_major_both_ways(pair: Pair) -> None:
    forward = pair.compare()
    backward = type(pair)(pair.name, pair.data, pair.orchestrator, pair.legacy,
                          pair.shapes, pair.policy).compare()
    assert forward.label == backward.label == "major"
    assert forward.evidence


def test_files_are_named_for_their_pair() -> None:
    assert all(path.stem == path.stem.lower() for path in DATA.glob("*.json"))
