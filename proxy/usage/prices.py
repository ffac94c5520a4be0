"""The pinned price table and the USD cost of one model call.

Layer: pure core. Prices come only from the configuration: the `pricing` section (legacy
models: input / output / cached input / cache writes, per 1M tokens) and the `models`
entries (orchestrator models: `input_cost_per_1m_tokens` and `output_cost_per_1m_tokens`,
or the blended `cost_per_1m_tokens` for a side not given). A `pricing` entry wins over a `models`
entry of the same name because it is the more detailed one. A `models` entry that leaves
a side without a price has no price: the field's default (0) would otherwise make an
unpriced model look free.

Model names are matched forgivingly, because providers answer with a dated snapshot of
the model that was asked for. Candidates, tried in order against the (case-insensitive)
keys, stopping at the first hit:

1. the name as given;
2. without a routing prefix up to the last `/` (`openai/gpt-4o` -> `gpt-4o`);
3. repeatedly without one trailing snapshot suffix: a date `-2024-07-18`, `-20241022`,
   `@20240620`, a four-digit `-0613`, `-latest`, or a Bedrock version `-v2:0`
   (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`, never -> `gpt-4o`: only suffixes that
   name a snapshot are removed, so a different model of the same family never matches).

A model that matches nothing has no cost (`usd=None`, reason `unknown_model`), and its
name is counted in `unknown_models` (bounded) so the operator can add it: the report
never shows a made-up number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from proxy.config.model import Config
from proxy.config.orchestrator import ModelEntry
from proxy.config.pricing import Price
from proxy.usage.meter import UsageRecord

_SNAPSHOT = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{4}|-latest|-v\d+(?::\d+)?)$")
_MATCH_CACHE_SIZE = 1024
_UNKNOWN_NAMES = 256
PER_TOKEN = 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens of one model; cache prices fall back to the input price."""

    input_per_1m: float
    output_per_1m: float
    cached_input_per_1m: float | None = None
    cache_write_input_per_1m: float | None = None
    source: Literal["pricing", "models"] = "pricing"


@dataclass(frozen=True, slots=True)
class CallCost:
    """The cost of one call: `usd` is None when it is unknown, `reason` says why."""

    usd: float | None
    model: str | None = None
    estimated: bool = False
    reason: Literal["unknown_model", "no_usage"] | None = None


def model_candidates(name: str) -> Iterator[str]:
    """The names tried for a lookup, most specific first (see the module docstring)."""
    current = name.strip().lower()
    yield current
    if "/" in current:
        current = current.rsplit("/", 1)[1]
        yield current
    while match := _SNAPSHOT.search(current):
        current = current[:match.start()]
        if not current:
            return
        yield current


def price_from_entry(entry: ModelEntry) -> ModelPrice | None:
    """An orchestrator model's price: input and output prices, each falling back to the
    blended `cost_per_1m_tokens`; None when a side is left without any price."""
    blended = entry.cost_per_1m_tokens if "cost_per_1m_tokens" in entry.model_fields_set \
        else None
    input_price = entry.input_cost_per_1m_tokens
    output_price = entry.output_cost_per_1m_tokens
    input_price = blended if input_price is None else input_price
    output_price = blended if output_price is None else output_price
    if input_price is None or output_price is None:
        return None
    return ModelPrice(input_per_1m=input_price, output_per_1m=output_price, source="models")


class PriceTable:
    """Lookups and costs; the only mutable state is a bounded cache of name matches and
    the count of unknown model names."""

    def __init__(self, prices: Mapping[str, ModelPrice]):
        self._prices = {name.strip().lower(): price for name, price in prices.items()}
        self._matches: dict[str, str | None] = {}
        self.unknown_models: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: Config) -> PriceTable:
        return cls.from_sections(config.pricing, config.models)

    @classmethod
    def from_sections(cls, pricing: Mapping[str, Price],
                      models: Sequence[ModelEntry] = ()) -> PriceTable:
        prices: dict[str, ModelPrice] = {}
        for entry in models:
            price = price_from_entry(entry)
            if price is not None:
                prices[entry.name] = price
        for name, item in pricing.items():
            prices[name] = ModelPrice(item.input_per_1m, item.output_per_1m,
                                      item.cached_input_per_1m, item.cache_write_input_per_1m)
        return cls(prices)

    def __len__(self) -> int:
        return len(self._prices)

    def match(self, model: str | None) -> str | None:
        """The price-table key for a model name, or None."""
        if not model:
            return None
        if model in self._matches:
            return self._matches[model]
        key = next((c for c in model_candidates(model) if c in self._prices), None)
        if len(self._matches) >= _MATCH_CACHE_SIZE:
            self._matches.clear()
        self._matches[model] = key
        return key

    def price(self, model: str | None) -> ModelPrice | None:
        key = self.match(model)
        return None if key is None else self._prices[key]

    def cost(self, usage: UsageRecord | None, request_model: str | None = None) -> CallCost:
        """USD for one call, priced by the model that answered (`usage.response_model`),
        else by the model that was asked for."""
        response_model = usage.response_model if usage is not None else None
        key = self.match(response_model) or self.match(request_model)
        if key is None:
            self._count_unknown(response_model or request_model or "")
            return CallCost(None, reason="unknown_model")
        if usage is None or not usage.known:
            return CallCost(None, key, reason="no_usage")
        return CallCost(usd_for(self._prices[key], usage), key, estimated=usage.estimated)

    def _count_unknown(self, name: str) -> None:
        name = name[:128] or "(none)"
        if name not in self.unknown_models and len(self.unknown_models) >= _UNKNOWN_NAMES:
            name = "(other)"
        self.unknown_models[name] = self.unknown_models.get(name, 0) + 1


def usd_for(price: ModelPrice, usage: UsageRecord) -> float:
    """Input is billed in three parts: cache reads, cache writes, the rest; the cache
    counts are clamped to the input total so a provider's odd numbers never go negative."""
    total_in = usage.input_tokens or 0
    cache_read = min(usage.cache_read_tokens or 0, total_in)
    cache_write = min(usage.cache_creation_tokens or 0, total_in - cache_read)
    fresh = total_in - cache_read - cache_write
    cached_price = price.cached_input_per_1m
    write_price = price.cache_write_input_per_1m
    micro_usd = (
        fresh * price.input_per_1m
        + cache_read * (price.input_per_1m if cached_price is None else cached_price)
        + cache_write * (price.input_per_1m if write_price is None else write_price)
        + (usage.output_tokens or 0) * price.output_per_1m
    )
    return micro_usd / PER_TOKEN
