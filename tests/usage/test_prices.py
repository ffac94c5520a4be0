"""The pinned price table: name matching, cost per call, unknown models, config."""

from __future__ import annotations

import pytest

from proxy.config import ConfigError, parse_config
from proxy.config.comparison import ComparisonSection
from proxy.config.orchestrator import ModelEntry
from proxy.config.pricing import Price
from proxy.usage.meter import UsageRecord
from proxy.usage.prices import CallCost, ModelPrice, PriceTable, model_candidates, usd_for

TABLE = PriceTable.from_sections({
    "gpt-4o": Price(input_per_1m=2.5, output_per_1m=10.0, cached_input_per_1m=1.25),
    "gpt-4o-mini": Price(input_per_1m=0.15, output_per_1m=0.6, cached_input_per_1m=0.075),
    "gpt-4": Price(input_per_1m=30.0, output_per_1m=60.0),
    "claude-3-5-sonnet": Price(input_per_1m=3.0, output_per_1m=15.0, cached_input_per_1m=0.3,
                               cache_write_input_per_1m=3.75),
    "claude-3-opus": Price(input_per_1m=15.0, output_per_1m=75.0),
    "Qwen/Qwen2.5-72B-Instruct": Price(input_per_1m=0.9, output_per_1m=0.9),
})


@pytest.mark.parametrize(("name", "key"), [
    ("gpt-4o", "gpt-4o"),
    ("GPT-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("openai/gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4-0613", "gpt-4"),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
    ("claude-3-opus-latest", "claude-3-opus"),
    ("Qwen/Qwen2.5-72B-Instruct", "qwen/qwen2.5-72b-instruct"),
    # Never a different model of the same family:
    ("gpt-4o-audio-preview", None),
    ("gpt-4o-mini-tts", None),
    ("gpt-4.1", None),
    ("claude-3-5-haiku-20241022", None),
    ("", None),
    (None, None),
])
def test_model_matching(name: str | None, key: str | None) -> None:
    assert TABLE.match(name) == key


def test_candidates_strip_one_suffix_at_a_time() -> None:
    assert list(model_candidates("vendor/claude-3-5-sonnet-20241022-v2:0")) == [
        "vendor/claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-20241022-v2:0",
        "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"]


def usage(inp: int | None, out: int | None, **extra: object) -> UsageRecord:
    return UsageRecord(input_tokens=inp, output_tokens=out, **extra)  # type: ignore[arg-type]


def test_cost_input_and_output() -> None:
    cost = TABLE.cost(usage(1_000_000, 500_000, response_model="gpt-4o-2024-08-06"))
    assert cost == CallCost(2.5 + 5.0, "gpt-4o")


def test_cached_input_is_billed_at_the_cached_price() -> None:
    record = usage(1000, 100, cache_read_tokens=800)
    # 200 fresh at 2.5, 800 cached at 1.25, 100 out at 10 (per 1M).
    assert TABLE.cost(record, "gpt-4o").usd == pytest.approx(
        (200 * 2.5 + 800 * 1.25 + 100 * 10.0) / 1e6)


def test_anthropic_cache_writes_and_reads() -> None:
    record = usage(1150, 15, cache_read_tokens=1000, cache_creation_tokens=50)
    expected = (100 * 3.0 + 1000 * 0.3 + 50 * 3.75 + 15 * 15.0) / 1e6
    assert TABLE.cost(record, "claude-3-5-sonnet-20241022").usd == pytest.approx(expected)


def test_cache_prices_default_to_the_input_price() -> None:
    price = ModelPrice(input_per_1m=2.0, output_per_1m=4.0)
    record = usage(100, 10, cache_read_tokens=60, cache_creation_tokens=40)
    assert usd_for(price, record) == pytest.approx((100 * 2.0 + 10 * 4.0) / 1e6)


def test_odd_cache_counts_never_go_negative() -> None:
    record = usage(10, 0, cache_read_tokens=50, cache_creation_tokens=50)
    assert TABLE.cost(record, "gpt-4o").usd == pytest.approx(10 * 1.25 / 1e6)


def test_response_model_wins_over_the_requested_one() -> None:
    record = usage(1_000_000, 0, response_model="gpt-4o-mini-2024-07-18")
    assert TABLE.cost(record, "gpt-4o").model == "gpt-4o-mini"
    assert TABLE.cost(usage(1_000_000, 0, response_model="custom-x"), "gpt-4o").model == "gpt-4o"


def test_estimated_usage_gives_an_estimated_cost() -> None:
    cost = TABLE.cost(usage(10, 10, estimated=True), "gpt-4o")
    assert cost.estimated and cost.usd is not None


def test_unknown_model_has_no_cost_and_is_counted() -> None:
    table = PriceTable.from_sections({"gpt-4o": Price(input_per_1m=1, output_per_1m=1)})
    assert table.cost(usage(10, 10), "mystery-model") == CallCost(None, reason="unknown_model")
    table.cost(usage(10, 10, response_model="mystery-model"))
    assert table.unknown_models == {"mystery-model": 2}


def test_unknown_names_are_bounded() -> None:
    table = PriceTable({})
    for index in range(400):
        table.cost(None, f"model-{index}")
    assert len(table.unknown_models) <= 257
    assert table.unknown_models["(other)"] == 400 - 256


def test_missing_usage_has_no_cost() -> None:
    assert TABLE.cost(None, "gpt-4o") == CallCost(None, "gpt-4o", reason="no_usage")
    assert TABLE.cost(usage(10, None), "gpt-4o").reason == "no_usage"


def entry(**fields: object) -> ModelEntry:
    return ModelEntry.model_validate({"name": "m", **fields})


@pytest.mark.parametrize(("fields", "expected"), [
    ({"cost_per_1m_tokens": 0.4}, (0.4, 0.4)),
    ({"input_cost_per_1m_tokens": 1.0, "output_cost_per_1m_tokens": 3.0}, (1.0, 3.0)),
    ({"cost_per_1m_tokens": 0.5, "output_cost_per_1m_tokens": 2.0}, (0.5, 2.0)),
    ({"cost_per_1m_tokens": 0.0}, (0.0, 0.0)),
    ({"input_cost_per_1m_tokens": 1.0}, None),
    ({}, None),
])
def test_orchestrator_model_prices(fields: dict[str, object],
                                   expected: tuple[float, float] | None) -> None:
    table = PriceTable.from_sections({}, [entry(**fields)])
    price = table.price("m")
    assert (None if price is None else (price.input_per_1m, price.output_per_1m)) == expected


def test_pricing_section_wins_over_a_models_entry() -> None:
    table = PriceTable.from_sections({"m": Price(input_per_1m=9, output_per_1m=9)},
                                     [entry(cost_per_1m_tokens=1)])
    price = table.price("m")
    assert price is not None and price.source == "pricing" and price.input_per_1m == 9


def test_from_config_reads_both_sections() -> None:
    config = parse_config({
        "models": [{"name": "qwen-max", "cost_per_1m_tokens": 0.4}],
        "pricing": {"gpt-4o-mini": {"input_per_1m": 0.15, "output_per_1m": 0.6,
                                    "cached_input_per_1m": 0.075}},
    })
    table = PriceTable.from_config(config)
    assert len(table) == 2
    assert table.cost(usage(1_000_000, 1_000_000), "qwen-max-2025-01-25").usd == pytest.approx(0.8)


def test_negative_prices_are_rejected_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"pricing\.gpt\.input_per_1m"):
        parse_config({"pricing": {"gpt": {"input_per_1m": -1, "output_per_1m": 1}}})


def test_comparison_section_bounds_the_number_of_buckets() -> None:
    with pytest.raises(ValueError, match="buckets"):
        ComparisonSection(report_retention_hours=24 * 90, report_bucket_seconds=60)
    assert ComparisonSection().report_retention_hours == 168


def test_default_config_prices_the_orchestrator_models() -> None:
    from pathlib import Path

    from proxy.config import load_config

    root = Path(__file__).resolve().parents[2]
    table = PriceTable.from_config(load_config(str(root / "config.json"), env={}).config)
    assert table.match("qwen-max-2025-01-25") == "qwen-max"
    assert table.match("deepseek-chat") == "deepseek-chat"
