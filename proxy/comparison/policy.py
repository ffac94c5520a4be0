"""The divergence policy (`policies/divergence.json`): per route, what to ignore, how much
each comparator counts, and the thresholds that turn a score into a label.

Layer: pure core (the file itself is read by `proxy.config.load.read_json_file`, the one
place configuration files are read). The file has a `default` policy and `routes`
overrides keyed by route prefix; an override replaces the fields it names, except
`weights`, which are merged comparator by comparator. A request's route is matched to
the longest override prefix on a path-segment boundary (`/openai` covers `/openai` and
`/openai/v1`, not `/openai2`).

Fact rules (`proxy.comparison.rules`) can overrule the thresholds: a changed fact, JSON
value or key, tool call, finish class, an empty answer or a refusal makes the label
`major`, provided the comparator it belongs to has a weight above 0. Their keys:
`number_tolerance` (relative, default 0: `0.02` lets 0.91 and 0.92 be the same number,
in JSON answers, tool-call arguments and prose), `json_sets` (paths of JSON arrays whose
order does not matter: `$.tags`, `$.items[*].labels`, `[*]` for any index, for JSON
answers and tool-call arguments alike), `prose_facts` (default true; false grades prose
by similarity only, for routes whose answers are meant to vary, such as creative
writing).

Score = the largest weighted comparator divergence (the worst part of the answer
decides, and the parts are reported so the reason is visible); label = `identical` when
the canonical answers are equal, else `equivalent` up to `thresholds.equivalent`,
`minor` up to `thresholds.minor`, `major` above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from proxy.config.base import Section
from proxy.config.load import read_json_file, validated

COMPARATORS = ("text", "json", "tool_calls", "finish_reason", "envelope", "embedding",
               "error")


class Weights(Section):
    """How much each comparator's divergence counts, in [0, 1]."""

    text: float = Field(default=1.0, ge=0, le=1)
    json_: float = Field(default=1.0, ge=0, le=1, alias="json")
    tool_calls: float = Field(default=1.0, ge=0, le=1)
    finish_reason: float = Field(default=0.5, ge=0, le=1)
    envelope: float = Field(default=0.1, ge=0, le=1)
    embedding: float = Field(default=1.0, ge=0, le=1)
    error: float = Field(default=1.0, ge=0, le=1)

    def of(self, comparator: str) -> float:
        value: float = getattr(self, "json_" if comparator == "json" else comparator)
        return value


class Thresholds(Section):
    equivalent: float = Field(default=0.15, ge=0, le=1)
    minor: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.equivalent > self.minor:
            raise ValueError("thresholds: equivalent must not exceed minor")
        return self


DEFAULT_IGNORE_KEYS = ("id", "created", "created_at", "completed_at", "system_fingerprint",
                       "usage", "model", "service_tier", "request_id", "timestamp",
                       "logprobs", "object")


_SET_PATH = re.compile(r"\$(?:\.[^.\[\]]+|\[\*\])*")


def _set_paths(paths: frozenset[str] | None) -> frozenset[str] | None:
    for path in paths or ():
        if not _SET_PATH.fullmatch(path):
            raise ValueError(f"{path!r} is not a path from the answer's root such as $.tags "
                             "or $.items[*].labels ([*] for any index, no other wildcards)")
    return paths


class RoutePolicy(Section):
    """The resolved policy of one route."""

    description: str = ""
    ignore_keys: frozenset[str] = frozenset(DEFAULT_IGNORE_KEYS)
    content_ignore_keys: frozenset[str] = frozenset()
    missing_equals_empty: bool = True
    case_sensitive: bool = False
    number_tolerance: float = Field(default=0.0, ge=0, lt=1)
    json_sets: frozenset[str] = frozenset()
    prose_facts: bool = True
    weights: Weights = Weights()
    thresholds: Thresholds = Thresholds()

    _sets = field_validator("json_sets")(_set_paths)


class RouteOverride(Section):
    description: str = ""
    ignore_keys: frozenset[str] | None = None
    content_ignore_keys: frozenset[str] | None = None
    missing_equals_empty: bool | None = None
    case_sensitive: bool | None = None
    number_tolerance: float | None = Field(default=None, ge=0, lt=1)
    json_sets: frozenset[str] | None = None
    prose_facts: bool | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    thresholds: Thresholds | None = None

    _sets = field_validator("json_sets")(_set_paths)

    @model_validator(mode="after")
    def _known_comparators(self) -> RouteOverride:
        for name in self.weights:
            if name not in COMPARATORS:
                raise ValueError(f"weights: unknown comparator {name!r} "
                                 f"(one of {', '.join(COMPARATORS)})")
        return self

    def apply(self, base: RoutePolicy) -> RoutePolicy:
        changes: dict[str, Any] = {
            key: value for key, value in self.model_dump(exclude={"weights"}).items()
            if value is not None and key in self.model_fields_set
        }
        merged = base.model_dump(by_alias=True) | changes
        merged["weights"] = base.weights.model_dump(by_alias=True) | self.weights
        return RoutePolicy.model_validate(merged)


class DivergencePolicy(Section):
    description: str = ""
    schema_version: int = Field(default=1, alias="schema")
    default: RoutePolicy = RoutePolicy()
    routes: dict[str, RouteOverride] = Field(default_factory=dict)
    # Resolved policies by route, filled on first use (resolution validates a model).
    _resolved: dict[str, RoutePolicy] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _route_keys(self) -> DivergencePolicy:
        for prefix in self.routes:
            if not prefix.startswith("/") or (prefix != "/" and prefix.endswith("/")):
                raise ValueError(f"routes: {prefix!r} must start with / and not end with /")
        return self

    def for_route(self, route: str) -> RoutePolicy:
        """The policy for a route prefix or request path (longest matching override)."""
        best = ""
        for prefix in self.routes:
            if _covers(prefix, route) and len(prefix) > len(best):
                best = prefix
        if not best:
            return self.default
        if best not in self._resolved:
            self._resolved[best] = self.routes[best].apply(self.default)
        return self._resolved[best]


def _covers(prefix: str, path: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def parse_policy(data: Mapping[str, Any], source: str = "<policy>") -> DivergencePolicy:
    return validated(DivergencePolicy, data, source)


def load_policy(path: Path | None) -> DivergencePolicy:
    """The policy file, or the built-in default when `path` is None."""
    if path is None:
        return DivergencePolicy()
    return parse_policy(read_json_file(path), str(path))
