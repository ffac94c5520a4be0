"""The judge in the comparison report: its counters in a bucket, and per route how often
its verdicts agree with the rules' labels.

Layer: pure core. Counters (fields of the bucket hash, see `proxy.report.entry`):

    judge:verdicts                  comparisons the judge classified
    judge:{label}:{verdict}         the rules' label against the verdict (at most 4 x 5)
    judge:failed                    the judge was asked and gave no verdict
    judge:failed:{why}              timeout, error, invalid_verdict
    judge:skipped:{why}             chosen but not asked: concurrency_full, budget_spent,
                                    budget_unavailable, too_long, no_key, no_policy

Agreement comes from the cross-table through `proxy.judge.verdict.agreement` (documented
there): `agree`, `rules_lenient` (the rules missed a difference the judge found) and
`rules_strict` (the rules called `major` what the judge found the same facts). Its cost
is the `judge` role of the cost table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from proxy.comparison.comparator import LABELS, Label
from proxy.judge.verdict import VERDICTS, Verdict, agreement

FAILURES = ("timeout", "error", "invalid_verdict")
SKIPS = ("concurrency_full", "budget_spent", "budget_unavailable", "too_long", "no_key",
         "no_policy")


@dataclass(frozen=True, slots=True)
class JudgeTally:
    """What the judge did with one comparison: a verdict, a failure or a skip."""

    label: Label
    verdict: Verdict | None = None
    failure: str | None = None
    skipped: str | None = None


def judge_increments(tally: JudgeTally, add: Callable[[str, int], None]) -> None:
    if tally.verdict is not None:
        add("judge:verdicts", 1)
        add(f"judge:{tally.label}:{tally.verdict}", 1)
    elif tally.failure is not None:
        add("judge:failed", 1)
        add(f"judge:failed:{tally.failure}", 1)
    elif tally.skipped is not None:
        add(f"judge:skipped:{tally.skipped}", 1)


@dataclass(frozen=True, slots=True)
class JudgeSummary:
    verdicts: int
    agree: int
    rules_lenient: int
    rules_strict: int
    agreement_rate: float | None
    failed: int
    failures: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    # rules label -> verdict -> count, only the cells that are not 0
    table: dict[str, dict[str, int]] = field(default_factory=dict)


def judge_summary(fields: Mapping[str, float]) -> JudgeSummary | None:
    """The route's judge numbers, or None when the judge never looked at it."""
    if not any(name.startswith("judge:") for name in fields):
        return None
    table: dict[str, dict[str, int]] = {}
    counts = {"agree": 0, "rules_lenient": 0, "rules_strict": 0}
    for label in LABELS:
        for verdict in VERDICTS:
            count = int(fields.get(f"judge:{label}:{verdict}", 0))
            if count:
                table.setdefault(label, {})[verdict] = count
                counts[agreement(label, verdict)] += count
    verdicts = int(fields.get("judge:verdicts", 0))
    return JudgeSummary(
        verdicts=verdicts, agree=counts["agree"], rules_lenient=counts["rules_lenient"],
        rules_strict=counts["rules_strict"],
        agreement_rate=counts["agree"] / verdicts if verdicts else None,
        failed=int(fields.get("judge:failed", 0)),
        failures=_named(fields, "judge:failed:", FAILURES),
        skipped=_named(fields, "judge:skipped:", SKIPS), table=table)


def _named(fields: Mapping[str, float], prefix: str, names: tuple[str, ...]
           ) -> dict[str, int]:
    return {name: int(fields[prefix + name]) for name in names if fields.get(prefix + name)}


def judge_lines(summary: JudgeSummary | None) -> list[str]:
    """The judge's section of a route in the text report (nothing when it never ran)."""
    if summary is None:
        return []
    s = summary
    rate = "n/a" if s.agreement_rate is None else f"{s.agreement_rate * 100:.1f}%"
    lines = [f"judge           {s.verdicts} verdicts, agreeing with the rules {rate} "
             f"({s.agree})   rules too lenient {s.rules_lenient}   too strict "
             f"{s.rules_strict}",
             f"                failed {s.failed}{_detail(s.failures)}   skipped "
             f"{sum(s.skipped.values())}{_detail(s.skipped)}"]
    if s.table:
        lines.append("  rules \\ judge" + "".join(f"{_SHORT.get(v, v):>14}"
                                               for v in VERDICTS))
        for label in LABELS:
            row = s.table.get(label)
            if row:
                lines.append(f"  {label:<13}" + "".join(f"{row.get(v, 0):>14}"
                                                       for v in VERDICTS))
    return lines


_SHORT = {"irrelevant_difference": "irrelevant"}


def _detail(counts: Mapping[str, int]) -> str:
    return " (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")" if counts else ""
