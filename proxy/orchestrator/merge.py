"""Confidence-weighted merging: group equivalent answers, weigh each model's vote by its
learned reliability, pick the most probable group.

Layer: pure core.

Equivalence. Tool-call answers are equal when the calls (name and canonical JSON
arguments, ids ignored) are; structured answers when their canonical JSON is (sorted
keys, 1.0 == 1); prose when the normalised texts (case-folded, whitespace collapsed,
trailing punctuation dropped) are equal, or when the comparison (`proxy.comparison.
same_answer`, the rules that label divergence) finds the same facts and at least
`similarity_threshold` similarity. One comparator decides both, so two answers that
differ on one number, name, date or negation never share a group however alike they
read. Votes are clustered in a fixed order (by model name), so the result does not
depend on the order answers arrived in.

Confidence. Each model is a voter that is right with probability r (its reliability,
clamped to [0.01, 0.99]); a wrong answer coincides with another given answer with
probability q (`collision_rate`). The probability that group g holds the right answer,
given all votes, against the alternatives "another group is right" and "none is", is

    P(g) = exp(S_g) / (Σ_h exp(S_h) + 1/q),   S_g = Σ_{i∈g} log(r_i / ((1 − r_i) q))

(weighted majority voting with log-odds weights, Nitzan & Paroush 1982). One answer
alone gets exactly its model's reliability; agreement raises confidence quickly; a split
lowers it. The winner is the most probable group; `scores` gives each model the
probability of its own group. A model's self-reported confidence c (the Python API's
`Response.confidence`) scales its reliability: r · c.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from proxy.comparison import same_answer
from proxy.comparison.answer import build_answer
from proxy.comparison.jsondiff import canonical_json
from proxy.orchestrator.content import Content

_MIN_R, _MAX_R = 0.01, 0.99
_TRAILING = re.compile(r"[\s.!?。！？]+$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Vote:
    model: str
    content: Content
    reliability: float


@dataclass(frozen=True)
class Group:
    key: str
    members: tuple[str, ...]
    representative: Content
    probability: float
    source: str  # the member whose answer is the representative (the most reliable)


@dataclass(frozen=True)
class MergeResult:
    winner: Group | None
    groups: tuple[Group, ...]
    scores: dict[str, float]

    @property
    def confidence(self) -> float:
        return self.winner.probability if self.winner else 0.0

    def agreed(self, model: str) -> bool:
        return self.winner is not None and model in self.winner.members


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip())


def answer_key(content: Content) -> str:
    """The equivalence key: equal keys are the same answer (prose may also be *similar*)."""
    if content.tool_calls:
        calls = [[call.name, call.parsed_arguments()] for call in content.tool_calls]
        return "tools:" + canonical_json(calls)
    if content.is_json:
        return "json:" + canonical_json(content.data)
    return "text:" + normalise_text(content.text)


def merge(votes: Sequence[Vote], *, similarity_threshold: float = 0.9,
          collision_rate: float = 0.1) -> MergeResult:
    if not votes:
        return MergeResult(None, (), {})
    clusters = _cluster(sorted(votes, key=lambda v: v.model), similarity_threshold)
    weights = [sum(_log_odds(v.reliability, collision_rate) for v in cluster)
               for cluster in clusters]
    log_total = _logsumexp([*weights, -math.log(collision_rate)])
    groups = []
    for cluster, weight in zip(clusters, weights, strict=True):
        best = _representative(cluster)
        groups.append(Group(answer_key(cluster[0].content), tuple(v.model for v in cluster),
                            best.content, _probability(weight - log_total), best.model))
    groups.sort(key=lambda g: (-g.probability, -len(g.members), g.key))
    scores = {model: group.probability for group in groups for model in group.members}
    return MergeResult(groups[0], tuple(groups), scores)


def _cluster(votes: Sequence[Vote], threshold: float) -> list[list[Vote]]:
    clusters: list[list[Vote]] = []
    keys: list[str] = []
    for vote in votes:
        key = answer_key(vote.content)
        index = _match(key, vote.content, keys, clusters, threshold)
        if index is None:
            clusters.append([vote])
            keys.append(key)
        else:
            clusters[index].append(vote)
    return clusters


def _match(key: str, content: Content, keys: Sequence[str], clusters: Sequence[list[Vote]],
           threshold: float) -> int | None:
    """The group this answer joins: the same key, else the first group whose first
    answer the comparison finds the same (facts and all)."""
    if key in keys:
        return keys.index(key)
    if not key.startswith("text:") or threshold >= 1.0:
        return None
    mine = build_answer(None, text=content.text)
    for index, other in enumerate(keys):
        if other.startswith("text:") and same_answer(
                mine, build_answer(None, text=clusters[index][0].content.text),
                threshold=threshold):
            return index
    return None


def _representative(cluster: Sequence[Vote]) -> Vote:
    return min(cluster, key=lambda v: (-v.reliability, v.model))


def _probability(log_p: float) -> float:
    """Never certain: the 1/q term keeps every group below 1, but six agreeing votes of
    reliable models put it within a rounding error of 1.0, which a float then shows."""
    return min(math.exp(log_p), _BELOW_ONE)


_BELOW_ONE = math.nextafter(1.0, 0.0)


def _log_odds(reliability: float, collision_rate: float) -> float:
    r = min(_MAX_R, max(_MIN_R, reliability))
    return math.log(r / ((1 - r) * collision_rate))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def first_answer(votes: Sequence[Vote]) -> MergeResult:
    """Merging switched off: the first valid answer wins, as in the legacy system, with
    its model's reliability as the confidence."""
    if not votes:
        return MergeResult(None, (), {})
    first = votes[0]
    r = min(_MAX_R, max(_MIN_R, first.reliability))
    group = Group(answer_key(first.content), (first.model,), first.content, r, first.model)
    return MergeResult(group, (group,), {first.model: r})
