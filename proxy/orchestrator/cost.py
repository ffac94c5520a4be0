"""What a model call costs: the estimate made before calling, the actual cost after, and
the per-request budget that keeps the sum under the cost limit.

Layer: pure core. The estimate is a deliberate over-estimate so that "never start a call
that would exceed the limit" holds without a tokenizer: input tokens are taken as UTF-8
bytes / 3 (English runs about 4 characters per token, CJK about one character, i.e. 3
bytes, per token) plus a few tokens per message, and output tokens as the request's
`max_tokens` (or `assumed_output_tokens`), which is also sent to the model as its limit.
Actual cost comes from the usage the provider reports; without usage it stays the
estimate and is flagged as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from proxy.orchestrator.content import Usage
from proxy.orchestrator.registry import AIModel

_PER_MESSAGE_TOKENS = 4
_EPSILON = 1e-12


def estimate_input_tokens(prompt_bytes: int, messages: int) -> int:
    return math.ceil(prompt_bytes / 3) + _PER_MESSAGE_TOKENS * max(1, messages)


def text_tokens(text: str) -> int:
    """Tokens of a text whose usage nobody reported (same over-estimate)."""
    return math.ceil(len(text.encode("utf-8")) / 3) if text else 0


def price(model: AIModel, usage: Usage) -> float:
    """USD for the given token counts at the model's prices."""
    return (usage.input_tokens * model.input_price
            + usage.output_tokens * model.output_price) / 1_000_000


@dataclass(frozen=True)
class Estimate:
    model: str
    input_tokens: int
    output_tokens: int
    usd: float


def estimate(model: AIModel, input_tokens: int, max_output_tokens: int) -> Estimate:
    usd = price(model, Usage(input_tokens, max_output_tokens))
    return Estimate(model.name, input_tokens, max_output_tokens, usd)


class Budget:
    """The cost limit of one request. A call may start only if what was already spent,
    plus what running calls may still cost, plus its own estimate stays within the limit.
    `None` means no limit."""

    def __init__(self, limit: float | None):
        self.limit = limit
        self.spent = 0.0
        self.reserved = 0.0

    def affords(self, usd: float) -> bool:
        if self.limit is None:
            return True
        return self.spent + self.reserved + usd <= self.limit + _EPSILON

    def reserve(self, usd: float) -> bool:
        """Reserve the estimate of a call about to start; False (and nothing reserved)
        if it does not fit."""
        if not self.affords(usd):
            return False
        self.reserved += usd
        return True

    def settle(self, reserved: float, actual: float) -> None:
        """A call finished (or was cancelled): replace its reservation by what it cost."""
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += actual

    @property
    def remaining(self) -> float | None:
        if self.limit is None:
            return None
        return max(0.0, self.limit - self.spent - self.reserved)
