"""Which compared requests the judge looks at.

Layer: pure core. A comparison is judged only when all of these hold, in this order
(the first that fails is the reason it is not, kept in this replica's counts):

1. `off`: the judge is enabled (`comparison.judge.enabled`);
2. `route_not_allowed`: the request's route is listed in `comparison.judge.routes`:
   the answers and the question leave for the judge's model only where the operator
   said so, and no route is listed by default;
3. `label`: the rules' label is one of `comparison.judge.labels` (default `equivalent`
   and `minor`: same facts in other words, where a changed common noun or verb, a
   paraphrased negation or a unit conversion slips past the fact rules; add `major`
   to measure false alarms; an identical answer is never judged);
4. `not_prose`: the label came from the prose rules (reasons `text_edit`,
   `fact_changed`, `fact_missing`, `fact_added`): JSON values, tool calls, finish
   classes, refusals, empty answers and errors are settled by the rules themselves;
5. `sampled_out`: the request id falls in `comparison.judge.sample_percent`, by a
   stable hash salted apart from the noise sample's, so a judged request is no more
   likely to be a noise sample, and every replica makes the same choice for an id.
"""

from __future__ import annotations

from proxy.comparison.comparator import Comparison
from proxy.comparison.noise import in_sample
from proxy.config.comparison import JudgeSection

PROSE_REASONS = frozenset({"text_edit", "fact_changed", "fact_missing", "fact_added"})
_SALT = b"llm-shadow-judge"


def in_judge_sample(request_id: str, percent: float) -> bool:
    """Whether this request id is in the judge's sample (salted apart from the noise
    sample)."""
    return in_sample(request_id, percent, salt=_SALT)


def route_allowed(section: JudgeSection, route: str) -> bool:
    """Whether content of this route may be sent to the judge's model at all."""
    return section.enabled and route in section.routes


def not_judged(section: JudgeSection, route: str, request_id: str,
               comparison: Comparison) -> str | None:
    """None when the comparison is to be judged, else why not (see the module list)."""
    if not section.enabled:
        return "off"
    if not route_allowed(section, route):
        return "route_not_allowed"
    if comparison.label not in section.labels:
        return "label"
    if comparison.reason not in PROSE_REASONS:
        return "not_prose"
    if not in_judge_sample(request_id, section.sample_percent):
        return "sampled_out"
    return None
