"""The noise floor, and divergence measured against it.

Layer: pure core. An LLM does not answer the same request the same way twice, so some
divergence between legacy and orchestrator is only legacy's own randomness. For a share
of compared requests (`comparison.noise_sample_percent`) the proxy calls legacy a second
time and compares the two legacy answers with the same policy and the same `compare()`
(fact rules included: a resample that changes a number is `major` there too): the share
of those resample pairs labelled minor or major, per route, is the noise floor.

Divergence against noise (the number a ramp decision should look at):

    excess = p_compared - p_noise

where p = (minor + major) / pairs, with a 95 % confidence interval for the difference
of two independent proportions by Newcombe's hybrid score method (his method 10, built
from the two Wilson score intervals; it behaves at small counts and at 0 % or 100 %,
where the textbook Wald interval does not). The same is computed for `major` alone.
`enough` is False below `MIN_SAMPLES` pairs on either side: the numbers are still
given, but a ramp controller should not act on them. `significant` means the interval
lies entirely above zero: the orchestrator diverges more than legacy disagrees with
itself.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

Z_95 = 1.959964
MIN_SAMPLES = 30


@dataclass(frozen=True, slots=True)
class Proportion:
    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    def wilson(self, z: float = Z_95) -> tuple[float, float]:
        """The Wilson score interval; (0, 1) when there is no sample."""
        if self.total == 0:
            return 0.0, 1.0
        n, p = self.total, self.hits / self.total
        centre = p + z * z / (2 * n)
        spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        denominator = 1 + z * z / n
        return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass(frozen=True, slots=True)
class Excess:
    """p_compared - p_noise with its 95 % interval (None when either side is empty)."""

    value: float | None
    low: float | None
    high: float | None
    compared: int
    noise_samples: int

    @property
    def enough(self) -> bool:
        return self.compared >= MIN_SAMPLES and self.noise_samples >= MIN_SAMPLES

    @property
    def significant(self) -> bool:
        return self.low is not None and self.low > 0

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "low": self.low, "high": self.high,
                "compared": self.compared, "noise_samples": self.noise_samples,
                "enough": self.enough, "significant": self.significant}


def excess_divergence(compared: Proportion, noise: Proportion, z: float = Z_95) -> Excess:
    """Newcombe's hybrid score interval for compared.rate - noise.rate."""
    p1, p2 = compared.rate, noise.rate
    if p1 is None or p2 is None:
        return Excess(None, None, None, compared.total, noise.total)
    l1, u1 = compared.wilson(z)
    l2, u2 = noise.wilson(z)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Excess(round(diff, 6), round(max(-1.0, low), 6), round(min(1.0, high), 6),
                  compared.total, noise.total)


def in_sample(request_id: str, percent: float, *, salt: bytes = b"") -> bool:
    """Whether this request id falls in a `percent` sample: a stable hash of the id (keyed
    by `salt`, so two samples with different salts are independent) in basis points, so
    a retried request id makes the same choice on every replica."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    digest = hashlib.blake2b(request_id.encode(), digest_size=8, person=salt).digest()
    return int.from_bytes(digest, "big") % 10_000 < round(percent * 100)


def in_noise_sample(request_id: str, percent: float) -> bool:
    """Whether this request gets a legacy resample (the unsalted sample)."""
    return in_sample(request_id, percent)
