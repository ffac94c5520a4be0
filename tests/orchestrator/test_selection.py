"""Selection: cold start from configured latency and price, Thompson sampling over the
learned records (exploring and exploiting), reproducible with a seed, within budget."""

from __future__ import annotations

import random
from collections import Counter

from proxy.config.orchestrator import SelectionSettings
from proxy.orchestrator.cost import estimate
from proxy.orchestrator.learned import Evidence, ModelRecord
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.selection import expected_latency, plan, rank, static_order

SETTINGS = SelectionSettings()
FAST_CHEAP = AIModel("fast-cheap", cost_per_1m_tokens=0.1, avg_response_time=1.0)
SLOW = AIModel("slow", cost_per_1m_tokens=0.1, avg_response_time=20.0)
PRICEY = AIModel("pricey", cost_per_1m_tokens=60.0, avg_response_time=1.0)
MODELS = [SLOW, PRICEY, FAST_CHEAP]


def estimates(models: list[AIModel]) -> dict:
    return {m.name: estimate(m, 1000, 1000) for m in models}


def top(records: dict[str, ModelRecord], rng: random.Random | None, n: int = 1) -> list[str]:
    ranked = rank(MODELS, lambda name: records.get(name, ModelRecord()), estimates(MODELS),
                  settings=SETTINGS, cost_limit=1.0, rng=rng)
    return [c.model.name for c in ranked[:n]]


def test_cold_start_prefers_the_fast_and_cheap_model() -> None:
    ranked = rank(MODELS, lambda _: ModelRecord(), estimates(MODELS), settings=SETTINGS,
                  cost_limit=1.0, rng=None)
    assert next(c.model.name for c in ranked) == "fast-cheap"
    assert {c.model.name for c in ranked[1:]} == {"slow", "pricey"}


def test_cold_start_still_explores() -> None:
    rng = random.Random(1)
    firsts = Counter(top({}, rng)[0] for _ in range(300))
    assert firsts.most_common(1)[0][0] == "fast-cheap"
    assert len(firsts) >= 2  # the others get tried too


def test_feedback_moves_selection_away_from_a_model() -> None:
    good = ModelRecord(calls=20, answered=20, feedback_correct=10)
    bad = ModelRecord(calls=20, answered=20, feedback_incorrect=10)
    rng = random.Random(3)
    before = Counter(top({"fast-cheap": good}, rng)[0] for _ in range(300))
    after = Counter(top({"fast-cheap": bad}, rng)[0] for _ in range(300))
    assert before["fast-cheap"] > 250
    assert after["fast-cheap"] < 60


def test_errors_and_timeouts_lower_a_models_chances() -> None:
    failing = ModelRecord(calls=30, errors=20, timeouts=10)
    rng = random.Random(5)
    firsts = Counter(top({"fast-cheap": failing}, rng)[0] for _ in range(300))
    assert firsts["fast-cheap"] < 60


def test_a_seed_makes_selection_reproducible() -> None:
    first = [top({}, random.Random(42), 3) for _ in range(1)]
    again = [top({}, random.Random(42), 3) for _ in range(1)]
    assert first == again


def test_measured_latency_replaces_the_configured_one_gradually() -> None:
    assert expected_latency(SLOW, ModelRecord()) == 20.0
    measured = ModelRecord(latency_sum=2.0 * 18, latency_count=18)  # 18 calls at 2 s
    assert expected_latency(SLOW, measured) == (2 * 20.0 + 36.0) / 20


def test_plan_skips_models_that_do_not_fit_the_budget() -> None:
    ranked = rank(MODELS, lambda _: ModelRecord(), estimates(MODELS), settings=SETTINGS,
                  cost_limit=0.01, rng=None)
    chosen = plan(ranked, 3, budget_left=0.01)
    assert "pricey" not in [c.model.name for c in chosen]  # $0.12 estimated > $0.01
    assert sum(c.estimate.usd for c in chosen) <= 0.01
    assert plan(ranked, 3, budget_left=0.0) == []
    assert [c.model.name for c in plan(ranked, 1, None, frozenset({"fast-cheap"}))] != [
        "fast-cheap"]


def test_static_order_is_the_configured_order() -> None:
    ordered = static_order(MODELS, lambda _: ModelRecord(), estimates(MODELS), Evidence())
    assert [c.model.name for c in ordered] == ["slow", "pricey", "fast-cheap"]
