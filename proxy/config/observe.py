"""The `pricing` and `comparison` sections: what a token costs, how answers are compared.

Layer: pure core. Prices are pinned here on purpose: the proxy runs in locked-down
clusters and never downloads a price list.
"""

from __future__ import annotations

from pydantic import Field

from proxy.config.base import Section


class Price(Section):
    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(None, ge=0)


class ComparisonSection(Section):
    noise_sample_percent: float = Field(10.0, ge=0, le=100)
    policy_file: str = "policies/divergence.json"
