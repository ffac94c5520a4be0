"""Cost estimates (an over-estimate by design) and the per-request budget."""

from __future__ import annotations

from proxy.orchestrator.content import Usage
from proxy.orchestrator.cost import Budget, estimate, estimate_input_tokens, price, text_tokens
from proxy.orchestrator.registry import AIModel


def test_separate_input_and_output_prices_override_the_flat_one() -> None:
    model = AIModel("m", cost_per_1m_tokens=1.0, output_cost_per_1m_tokens=4.0)
    assert price(model, Usage(1_000_000, 1_000_000)) == 1.0 + 4.0
    assert price(AIModel("flat", cost_per_1m_tokens=0.4), Usage(500_000, 500_000)) == 0.4


def test_estimate_bounds_typical_english_and_cjk_text() -> None:
    english = "the quick brown fox jumps over the lazy dog " * 20  # ~4 chars per token
    assert text_tokens(english) >= len(english) / 4
    chinese = "法国的首都是哪里" * 10  # about one token per character
    assert text_tokens(chinese) >= len(chinese)
    assert estimate_input_tokens(30, 2) == 10 + 8


def test_estimate_uses_max_output_tokens() -> None:
    est = estimate(AIModel("m", input_cost_per_1m_tokens=1, output_cost_per_1m_tokens=2),
                   1000, 500)
    assert est.usd == (1000 * 1 + 500 * 2) / 1_000_000


def test_budget_never_reserves_past_the_limit() -> None:
    budget = Budget(1.0)
    assert budget.reserve(0.6)
    assert not budget.reserve(0.5)  # 0.6 + 0.5 > 1.0: refused, nothing reserved
    assert budget.reserve(0.4)
    assert budget.remaining == 0.0
    budget.settle(0.6, 0.1)  # the call cost less than estimated
    assert budget.remaining == 0.5 and budget.spent == 0.1


def test_no_limit_affords_everything() -> None:
    budget = Budget(None)
    assert budget.reserve(1e9) and budget.remaining is None
