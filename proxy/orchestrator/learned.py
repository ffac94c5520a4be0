"""Learned records: what the orchestrator knows about each model per task type, and how
one call's outcome or one piece of feedback changes it.

Layer: pure core. A record is a set of counters (calls, answers, failures, agreement,
feedback, latency, cost). Counters only ever grow by deltas, so replicas can add their
deltas to a shared copy in Redis with atomic increments and never overwrite each other
(`proxy.orchestrator.learned_store`). Two Beta posteriors are read from a record:

- correctness, Beta(prior_correct + feedback_weight * feedback_correct
  + agreement_weight * agreed + validity_weight * valid,
  prior_incorrect + feedback_weight * feedback_incorrect
  + agreement_weight * disagreed + failure_weight * invalid):
  how likely the model's answer is right. Its mean is the model's *reliability*, which
  weighs its vote in the merge;
- availability, Beta(4 + answered, 1 + errors + timeouts): how likely it answers at all
  (the prior assumes an API mostly answers, so an untried model is not halved).

Selection samples from both (Thompson sampling, `proxy.orchestrator.selection`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Literal

from proxy.config.orchestrator import SelectionSettings

Outcome = Literal["valid", "invalid", "error", "timeout", "cancelled"]
RecordKey = tuple[str, str]  # (task type, model name)


@dataclass(frozen=True)
class ModelRecord:
    calls: int = 0
    answered: int = 0
    invalid: int = 0
    errors: int = 0
    timeouts: int = 0
    cancelled: int = 0
    agreed: int = 0
    disagreed: int = 0
    feedback_correct: int = 0
    feedback_incorrect: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    cost_sum: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def valid(self) -> int:
        return max(0, self.answered - self.invalid)

    @property
    def completed(self) -> int:
        """Calls that ran to an outcome (cancelled ones did not)."""
        return max(0, self.calls - self.cancelled)

    @property
    def success_rate(self) -> float | None:
        """Share of completed calls that produced a valid answer."""
        return self.valid / self.completed if self.completed else None

    @property
    def feedback_accuracy(self) -> float | None:
        total = self.feedback_correct + self.feedback_incorrect
        return self.feedback_correct / total if total else None

    @property
    def mean_latency(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def plus(self, delta: Mapping[str, float]) -> ModelRecord:
        changes = {name: getattr(self, name) + value for name, value in delta.items()
                   if name in FIELD_NAMES}
        return replace(self, **changes)

    @classmethod
    def from_counters(cls, raw: Mapping[str, str | bytes | float | int]) -> ModelRecord:
        """From a Redis hash (string values); unknown fields are ignored so an older
        replica can read records a newer one wrote."""
        values: dict[str, float | int] = {}
        for name, value in raw.items():
            key = name.decode() if isinstance(name, bytes) else str(name)
            if key in FIELD_NAMES:
                number = float(value.decode() if isinstance(value, bytes) else value)
                values[key] = number if key in FLOAT_FIELDS else int(number)
        return cls(**values)  # type: ignore[arg-type]


FIELD_NAMES = frozenset(field.name for field in fields(ModelRecord))
FLOAT_FIELDS = frozenset({"latency_sum", "cost_sum"})


def call_delta(outcome: Outcome, *, latency: float | None, cost: float,
               input_tokens: int = 0, output_tokens: int = 0) -> dict[str, float]:
    """The counters one finished (or cancelled) call adds."""
    delta: dict[str, float] = {"calls": 1, "cost_sum": cost,
                               "input_tokens": input_tokens, "output_tokens": output_tokens}
    if outcome in ("valid", "invalid"):
        delta["answered"] = 1
        if outcome == "invalid":
            delta["invalid"] = 1
    elif outcome == "error":
        delta["errors"] = 1
    elif outcome == "timeout":
        delta["timeouts"] = 1
    else:
        delta["cancelled"] = 1
    if latency is not None and outcome != "cancelled":
        delta["latency_sum"] = latency
        delta["latency_count"] = 1
    return delta


def agreement_delta(agreed: bool) -> dict[str, float]:
    return {"agreed": 1} if agreed else {"disagreed": 1}


def feedback_delta(was_correct: bool) -> dict[str, float]:
    return {"feedback_correct": 1} if was_correct else {"feedback_incorrect": 1}


@dataclass(frozen=True)
class Evidence:
    """How much each kind of evidence moves the correctness posterior."""

    prior_correct: float = 2.0
    prior_incorrect: float = 2.0
    feedback_weight: float = 3.0
    agreement_weight: float = 1.0
    validity_weight: float = 0.25
    failure_weight: float = 1.0

    @classmethod
    def from_settings(cls, settings: SelectionSettings) -> Evidence:
        return cls(settings.prior_correct, settings.prior_incorrect, settings.feedback_weight,
                   settings.agreement_weight, settings.validity_weight,
                   settings.failure_weight)


def correctness(record: ModelRecord, evidence: Evidence) -> tuple[float, float]:
    """Beta(alpha, beta) of the model's answers being right."""
    alpha = (evidence.prior_correct + evidence.feedback_weight * record.feedback_correct
             + evidence.agreement_weight * record.agreed
             + evidence.validity_weight * record.valid)
    beta = (evidence.prior_incorrect + evidence.feedback_weight * record.feedback_incorrect
            + evidence.agreement_weight * record.disagreed
            + evidence.failure_weight * record.invalid)
    return alpha, beta


def availability(record: ModelRecord) -> tuple[float, float]:
    """Beta(alpha, beta) of the model answering at all (no error, no timeout)."""
    return 4.0 + record.answered, 1.0 + record.errors + record.timeouts


def reliability(record: ModelRecord, evidence: Evidence) -> float:
    """The posterior mean of correctness: the model's weight in the merge."""
    alpha, beta = correctness(record, evidence)
    return alpha / (alpha + beta)


@dataclass(frozen=True)
class Sample:
    """One call, kept in a bounded recent window for percentiles and anomaly detection."""

    at: float
    outcome: Outcome
    latency: float | None
    cost: float

    @property
    def ok(self) -> bool:
        return self.outcome == "valid"

    def to_list(self) -> list[object]:
        return [round(self.at, 3), self.outcome, self.latency, self.cost]

    @classmethod
    def from_list(cls, raw: list[object]) -> Sample | None:
        try:
            at, outcome, latency, cost = raw
            if outcome not in ("valid", "invalid", "error", "timeout", "cancelled"):
                return None
            return cls(float(at),  # type: ignore[arg-type]
                       outcome,
                       None if latency is None else float(latency),  # type: ignore[arg-type]
                       float(cost))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
