"""What the request path hands to the report after a proxied request, and how that
becomes counter increments in one time bucket.

Layer: pure core. One `ReportEntry` per request (or several partial ones: counters only
add, so a noise resample that finishes later may be recorded on its own). Each call's
cost is attributed to exactly one role, so nothing is counted twice:

- `legacy`: the legacy call whose answer the client got (the primary);
- `shadow`: an extra legacy call made only for the comparison (the legacy call kept as
  the shadow of a divert);
- `noise`: the second legacy call of a noise sample;
- `orchestrator`: each model call the in-process orchestrator made, shadow or divert, or
  the one call to an external orchestrator endpoint;
- `judge`: the optional judge's model call grading a comparison (`proxy.judge`).

Besides the counts by label, a comparison counts its reason under its label (`reason:
major:fact_changed`; a noise sample under `noise_reason:`); reasons are a fixed set, so
this stays bounded. The orchestrator's model calls (in-process pipeline only: an
external orchestrator's models are not visible here) count per model under `om|{model}|`:
`calls` (how often selection picked it), its outcome (`valid`, `invalid`, `error`,
`timeout`, `cancelled`), `used` (its answer was in the answer served or compared), its
latency (`lat:{bin}`, the log bins below, positive), `usd`, and for compared answers it
contributed to, `compared` and `label:{label}`. Model names come from the configuration,
so these stay bounded too.

To add a counter (a judge's verdicts, say): count it in `increments`, read it back in
`proxy.report.aggregate.summarise` into a field of `RouteSummary`, and render it in
`proxy.report.text` and `proxy.report.html` (each has one function per part of a route).

The counter field names are the storage format of the bucket hashes (see
`proxy.report.aggregate_store`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from proxy.comparison.comparator import Comparison, Label
from proxy.report.example import Example
from proxy.report.judgements import JudgeTally, judge_increments

Role = Literal["legacy", "shadow", "noise", "orchestrator", "judge"]
ROLES: tuple[Role, ...] = ("legacy", "shadow", "noise", "orchestrator", "judge")
Outcome = Literal["ok", "low_confidence", "failed"]
MODEL_OUTCOMES = ("valid", "invalid", "error", "timeout", "cancelled")

MAX_MODEL_NAME = 80
LATENCY_BINS_PER_OCTAVE = 4
MAX_LATENCY_BIN = 88  # 2 ** (88 / 4) ms is about 70 minutes


class _Add(Protocol):
    def __call__(self, name: str, amount: int = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class RoleCost:
    """One call's cost; `usd=None` means the call could not be priced (counted apart)."""

    role: Role
    usd: float | None
    calls: int = 1


@dataclass(frozen=True, slots=True)
class ModelUse:
    """One model call of the in-process orchestrator: which model, how it ended (the
    learning's outcome: valid, invalid, error, timeout, cancelled), how long it took,
    what it cost, and whether its answer was used (in the merged answer)."""

    model: str
    outcome: str
    latency_s: float
    usd: float | None
    used: bool = False


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """`model` is the legacy model the client asked for; `models` the orchestrator's
    model calls; `contributors` the orchestrator models whose answer was compared;
    `example` a divergent pair kept with its content (capture opted in)."""

    route: str
    request_id: str
    at: float | None = None
    model: str | None = None
    comparison: Comparison | None = None
    latency_delta_s: float | None = None
    noise: Comparison | None = None
    costs: tuple[RoleCost, ...] = ()
    orchestrator: Outcome | None = None
    divert: bool = False
    fallback: bool = False
    models: tuple[ModelUse, ...] = ()
    contributors: tuple[str, ...] = ()
    example: Example | None = None
    # Shadows that were due and did not run, by reason (`overload`, `concurrency_full`):
    # `skipped_count` of them (the buffer sums them per route and reason).
    skipped: str | None = None
    skipped_count: int = 1
    judge: JudgeTally | None = None


def latency_bin(delta_ms: float) -> int:
    """Signed log bin of a latency delta: 4 bins per doubling (each spans +-9 % around
    its centre), 0 for |delta| < 1 ms, saturating at about 70 minutes."""
    magnitude = abs(delta_ms)
    if magnitude < 1 or math.isnan(magnitude):
        return 0
    index = min(MAX_LATENCY_BIN, 1 + math.floor(LATENCY_BINS_PER_OCTAVE * math.log2(magnitude)))
    return index if delta_ms > 0 else -index


def bin_centre_ms(index: int) -> float:
    """The geometric centre of a bin, the value a quantile that lands in it reports."""
    if index == 0:
        return 0.0
    centre = 2 ** ((abs(index) - 0.5) / LATENCY_BINS_PER_OCTAVE)
    return centre if index > 0 else -centre


def latency_histogram(fields: Mapping[str, float]) -> dict[int, int]:
    hist: dict[int, int] = {}
    for name, value in fields.items():
        if name.startswith("lat:") and name != "lat:count":
            try:
                hist[int(name[4:])] = int(value)
            except ValueError:
                continue
    return hist


def quantile(hist: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram, as its bin's centre, in ms."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank, running = q * total, 0
    for index in sorted(hist, key=bin_centre_ms):
        running += hist[index]
        if running >= rank:
            return round(bin_centre_ms(index), 3)
    return round(bin_centre_ms(max(hist, key=bin_centre_ms)), 3)


def model_field(model: str | None) -> str | None:
    if not model:
        return None
    return model.replace("|", "/")[:MAX_MODEL_NAME]


def increments(entry: ReportEntry) -> tuple[dict[str, int], dict[str, float]]:
    """(integer increments, float increments) for the entry's bucket hash."""
    ints: dict[str, int] = {}
    floats: dict[str, float] = {}

    def add(name: str, amount: int = 1) -> None:
        ints[name] = ints.get(name, 0) + amount

    if entry.comparison is not None:
        _comparison(entry, entry.comparison, add, floats)
    if entry.noise is not None:
        add("noise")
        add(f"noise:{entry.noise.label}")
        add(f"noise_reason:{entry.noise.label}:{entry.noise.reason}")
    _costs(entry.costs, add, floats)
    for use in entry.models:
        _model_use(use, add, floats)
    if entry.orchestrator is not None:
        add("orch:requests")
        if entry.orchestrator != "ok":
            add(f"orch:{entry.orchestrator}")
    if entry.divert:
        add("divert:requests")
        if entry.fallback:
            add("divert:fallbacks")
    if entry.skipped is not None:
        add(f"skip:{entry.skipped}", entry.skipped_count)
    if entry.judge is not None:
        judge_increments(entry.judge, add)
    return ints, floats


def _comparison(entry: ReportEntry, comparison: Comparison, add: _Add,
                floats: dict[str, float]) -> None:
    add("compared")
    add(f"label:{comparison.label}")
    add(f"reason:{comparison.label}:{comparison.reason}")
    if comparison.truncated:
        add("truncated")
    floats["score_sum"] = comparison.score
    model = model_field(entry.model)
    if model is not None:
        add(f"m|{model}|compared")
        add(f"m|{model}|{comparison.label}")
    if entry.latency_delta_s is not None and math.isfinite(entry.latency_delta_s):
        add(f"lat:{latency_bin(entry.latency_delta_s * 1000)}")
        add("lat:count")
    for name in dict.fromkeys(filter(None, map(model_field, entry.contributors))):
        add(f"om|{name}|compared")
        add(f"om|{name}|label:{comparison.label}")


def _model_use(use: ModelUse, add: _Add, floats: dict[str, float]) -> None:
    name = model_field(use.model)
    if name is None:
        return
    add(f"om|{name}|calls")
    add(f"om|{name}|{use.outcome if use.outcome in MODEL_OUTCOMES else 'error'}")
    if use.used:
        add(f"om|{name}|used")
    if use.outcome in ("valid", "invalid") and math.isfinite(use.latency_s):
        add(f"om|{name}|lat:{latency_bin(max(use.latency_s, 0.0) * 1000)}")
    if use.usd is None or not math.isfinite(use.usd):
        add(f"om|{name}|unpriced")
    else:
        key = f"om|{name}|usd"
        floats[key] = floats.get(key, 0.0) + use.usd


def _costs(costs: tuple[RoleCost, ...], add: _Add, floats: dict[str, float]) -> None:
    seen: set[str] = set()
    for cost in costs:
        add(f"cost:{cost.role}:calls", cost.calls)
        if cost.usd is None or not math.isfinite(cost.usd):
            add(f"cost:{cost.role}:unpriced", cost.calls)
        else:
            key = f"cost:{cost.role}:usd"
            floats[key] = floats.get(key, 0.0) + cost.usd
        if cost.role not in seen:
            seen.add(cost.role)
            add(f"cost:{cost.role}:requests")


def label_counts(fields: Mapping[str, float], prefix: str) -> dict[Label, int]:
    labels: tuple[Label, ...] = ("identical", "equivalent", "minor", "major")
    return {label: int(fields.get(f"{prefix}{label}", 0)) for label in labels}
