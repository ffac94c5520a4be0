"""Performance reports: per model and task type, calls, success rate, feedback accuracy,
latency p50/p95, cost, reliability, and anomalies.

Layer: pure core. Counters come from the learned records (every call ever counted);
latency percentiles and anomalies come from each record's window of recent calls (the
last `learning.samples_kept`, default 200).

Anomaly detection compares a model's most recent calls with its own earlier history in
that window, per task type, and flags only the bad direction:

- latency and cost per call: the median of the last 10 answered calls against the
  earlier ones, as a modified z-score, 0.6745 · (recent median − baseline median) / MAD
  (Iglewicz & Hoaglin); flagged above 3.5. The MAD is floored at 5 % of the baseline
  median so a perfectly steady history does not flag noise. Needs 20 baseline calls.
- error rate: errors and timeouts among the last 10 completed calls against the
  baseline rate (Laplace-smoothed); flagged when that many failures or more would happen
  with probability below 0.001 under the baseline rate (exact binomial tail).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from proxy.orchestrator.learned import Evidence, ModelRecord, RecordKey, Sample, reliability

RECENT = 10
MIN_BASELINE = 20
Z_LIMIT = 3.5
P_LIMIT = 0.001


@dataclass(frozen=True)
class Anomaly:
    model: str
    task_type: str
    metric: str
    recent: float
    baseline: float
    score: float
    message: str


@dataclass(frozen=True)
class Row:
    model: str
    task_type: str
    calls: int
    answered: int
    valid: int
    invalid: int
    errors: int
    timeouts: int
    cancelled: int
    success_rate: float | None
    feedback_correct: int
    feedback_incorrect: int
    feedback_accuracy: float | None
    reliability: float
    latency_p50: float | None
    latency_p95: float | None
    latency_mean: float | None
    cost_usd: float
    cost_per_call: float | None
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Report:
    generated_at: str
    store: str
    rows: tuple[Row, ...]
    anomalies: tuple[Anomaly, ...]

    def to_dict(self) -> dict[str, Any]:
        models: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            entry = models.setdefault(row.model, {"task_types": {}, "totals": {}})
            entry["task_types"][row.task_type] = asdict(row)
        for model, entry in models.items():
            entry["totals"] = _totals([r for r in self.rows if r.model == model])
        return {"generated_at": self.generated_at, "store": self.store,
                "models": models, "rows": [asdict(row) for row in self.rows],
                "anomalies": [asdict(anomaly) for anomaly in self.anomalies],
                "anomaly_method": "robust z-score of recent median (latency, cost) and "
                                  "binomial tail of recent failures, against each model's "
                                  "own history; see proxy/orchestrator/performance.py"}


def build_report(records: Mapping[RecordKey, ModelRecord],
                 samples: Mapping[RecordKey, Sequence[Sample]], evidence: Evidence,
                 *, generated_at: str, store: str) -> Report:
    rows, anomalies = [], []
    for (task, model), record in sorted(records.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        window = samples.get((task, model), ())
        rows.append(_row(model, task, record, window, evidence))
        anomalies.extend(detect_anomalies(model, task, window))
    return Report(generated_at, store, tuple(rows), tuple(anomalies))


def _row(model: str, task: str, record: ModelRecord, window: Sequence[Sample],
         evidence: Evidence) -> Row:
    latencies = sorted(s.latency for s in window
                       if s.latency is not None and s.outcome in ("valid", "invalid"))
    return Row(
        model=model, task_type=task, calls=record.calls, answered=record.answered,
        valid=record.valid, invalid=record.invalid, errors=record.errors,
        timeouts=record.timeouts, cancelled=record.cancelled,
        success_rate=record.success_rate, feedback_correct=record.feedback_correct,
        feedback_incorrect=record.feedback_incorrect,
        feedback_accuracy=record.feedback_accuracy,
        reliability=reliability(record, evidence),
        latency_p50=percentile(latencies, 50), latency_p95=percentile(latencies, 95),
        latency_mean=record.mean_latency, cost_usd=record.cost_sum,
        cost_per_call=record.cost_sum / record.calls if record.calls else None,
        input_tokens=record.input_tokens, output_tokens=record.output_tokens,
    )


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def detect_anomalies(model: str, task: str, window: Sequence[Sample]) -> list[Anomaly]:
    """`window` is newest first."""
    found = []
    answered = [s for s in window if s.outcome in ("valid", "invalid")]
    for metric, values in (("latency", [s.latency for s in answered if s.latency is not None]),
                           ("cost", [s.cost for s in answered])):
        anomaly = _robust_shift(model, task, metric, values)
        if anomaly:
            found.append(anomaly)
    completed = [s for s in window if s.outcome != "cancelled"]
    anomaly = _error_burst(model, task, completed)
    if anomaly:
        found.append(anomaly)
    return found


def _robust_shift(model: str, task: str, metric: str,
                  values: Sequence[float]) -> Anomaly | None:
    recent, baseline = values[:RECENT], values[RECENT:]
    if len(recent) < RECENT or len(baseline) < MIN_BASELINE:
        return None
    base_median = statistics.median(baseline)
    mad = statistics.median(abs(v - base_median) for v in baseline)
    mad = max(mad, 0.05 * abs(base_median), 1e-9)
    recent_median = statistics.median(recent)
    z = 0.6745 * (recent_median - base_median) / mad
    if z <= Z_LIMIT:
        return None
    unit = "s" if metric == "latency" else " USD"
    return Anomaly(model, task, metric, recent_median, base_median, round(z, 2),
                   f"{model} / {task}: {metric} median {recent_median:.4g}{unit} over the "
                   f"last {RECENT} calls vs {base_median:.4g}{unit} before "
                   f"(modified z-score {z:.1f} > {Z_LIMIT})")


def _error_burst(model: str, task: str, completed: Sequence[Sample]) -> Anomaly | None:
    recent, baseline = completed[:RECENT], completed[RECENT:]
    if len(recent) < RECENT or len(baseline) < MIN_BASELINE:
        return None
    failures = sum(s.outcome in ("error", "timeout") for s in recent)
    base_failures = sum(s.outcome in ("error", "timeout") for s in baseline)
    rate = (base_failures + 1) / (len(baseline) + 2)
    tail = binomial_tail(len(recent), failures, rate)
    if failures == 0 or tail >= P_LIMIT:
        return None
    return Anomaly(model, task, "error_rate", failures / len(recent), rate, tail,
                   f"{model} / {task}: {failures} of the last {len(recent)} calls failed vs "
                   f"a {rate:.1%} failure rate before (p = {tail:.2g} < {P_LIMIT})")


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _totals(rows: Sequence[Row]) -> dict[str, Any]:
    calls = sum(r.calls for r in rows)
    completed = sum(r.calls - r.cancelled for r in rows)
    feedback = sum(r.feedback_correct + r.feedback_incorrect for r in rows)
    return {"calls": calls,
            "success_rate": sum(r.valid for r in rows) / completed if completed else None,
            "feedback_accuracy": (sum(r.feedback_correct for r in rows) / feedback
                                  if feedback else None),
            "cost_usd": sum(r.cost_usd for r in rows)}


def render_text(report: Report) -> str:
    lines = [f"Orchestrator performance report ({report.generated_at}; learned records: "
             f"{report.store})", ""]
    header = (f"{'model':<24} {'task type':<18} {'calls':>6} {'success':>8} "
              f"{'feedback':>14} {'p50':>8} {'p95':>8} {'cost USD':>11} {'reliab.':>7}")
    lines += [header, "-" * len(header)]
    for r in report.rows:
        feedback = (f"{r.feedback_correct}/{r.feedback_correct + r.feedback_incorrect} "
                    f"{_pct(r.feedback_accuracy)}")
        lines.append(f"{r.model[:24]:<24} {r.task_type:<18} {r.calls:>6} "
                     f"{_pct(r.success_rate):>8} {feedback:>14} {_secs(r.latency_p50):>8} "
                     f"{_secs(r.latency_p95):>8} {r.cost_usd:>11.6f} {r.reliability:>7.2f}")
    if not report.rows:
        lines.append("(no calls recorded yet)")
    lines += ["", "Anomalies:"]
    lines += [f"  - {a.message}" for a in report.anomalies] or ["  (none)"]
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
