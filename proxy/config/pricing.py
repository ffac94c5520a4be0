"""The `pricing` section: what a token of each legacy model costs.

Layer: pure core. Prices are pinned in the configuration on purpose: the proxy runs in
locked-down clusters and never downloads a price list. Orchestrator models carry their own
prices in their `models` entries; `pricing` covers the legacy models (see
`proxy.usage.prices` for how a response's model name is matched to a key).
"""

from __future__ import annotations

from pydantic import Field

from proxy.config.base import Section


class Price(Section):
    """USD per 1M tokens. `cached_input_per_1m` applies to cache reads and
    `cache_write_input_per_1m` to cache writes (Anthropic); both default to the input
    price when absent."""

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(default=None, ge=0)
    cache_write_input_per_1m: float | None = Field(default=None, ge=0)
