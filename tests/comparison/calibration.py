"""The labelled calibration pairs in tests/data/divergence/: loading and scoring, shared
by the calibration test and bench/divergence.py.

Each file is one pair: `legacy` and `orchestrator` (a text answer, or a response body in
any shape `answer_from_document` detects), `shape` (the shape it must be detected as),
`route` (default /openai), optional `policy` (a route override applied over the shipped
policy's route), `expected` (the right label), `facts_differ` (whether the answers state
different facts: such a pair must never be labelled identical or equivalent), `category`
and `why`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from proxy.comparison import Comparison, answer_from_document, compare, load_policy
from proxy.comparison.answer import Answer
from proxy.comparison.policy import RouteOverride, RoutePolicy

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "divergence"
POLICY = load_policy(REPO / "policies" / "divergence.json")
FIELDS = {"category", "shape", "legacy", "orchestrator", "expected", "facts_differ", "why"}
OPTIONAL = {"route", "policy"}


@dataclass(frozen=True)
class Pair:
    name: str
    data: dict[str, Any]
    legacy: Answer
    orchestrator: Answer
    shapes: tuple[str, str]
    policy: RoutePolicy

    @property
    def expected(self) -> str:
        return str(self.data["expected"])

    def compare(self) -> Comparison:
        return compare(self.legacy, self.orchestrator, self.policy)


def load(path: Path) -> Pair:
    data = orjson.loads(path.read_bytes())
    legacy_shape, legacy = answer_from_document(data["legacy"])
    orchestrator_shape, orchestrator = answer_from_document(data["orchestrator"])
    policy = POLICY.for_route(data.get("route", "/openai"))
    if data.get("policy"):
        policy = RouteOverride.model_validate(data["policy"]).apply(policy)
    return Pair(path.stem, data, legacy, orchestrator, (legacy_shape, orchestrator_shape),
                policy)


def pairs() -> list[Pair]:
    return [load(path) for path in sorted(DATA.glob("*.json"))]
