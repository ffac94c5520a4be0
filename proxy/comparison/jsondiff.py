"""Field-level structural diff of two JSON documents.

Layer: pure core. Objects are compared key by key (so key order never matters), arrays
index by index (order matters: an answer's list order is part of the answer). Every leaf
of the union of both documents counts once; a differing leaf counts 1, except two
strings of 20+ characters, which count their text divergence (a long field with one word
changed is not a fully different field). A key missing on one side counts all the leaves
under it. `fraction` = differing leaves / leaves, in [0, 1].

Keys in `ignore_keys` are skipped at any depth (ids, timestamps, fingerprints, usage).
With `missing_equals_empty`, a null, [] or {} value is the same as an absent key (one
server writes `"refusal": null`, another leaves it out). Numbers compare by value
(1 == 1.0) with a relative tolerance of 1e-9; booleans are not numbers.

Bounded: at most `max_nodes` nodes are walked; past that, each remaining subtree pair
(and the unwalked tail of a long array) counts as one leaf, equal or not by Python
equality, and `truncated` is set. About 0.6 µs per node walked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.comparison.similarity import text_divergence

LONG_STRING = 20
MAX_PATHS = 10
_ABSENT = object()


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: equal documents give equal strings."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers beyond 64 bits
        import json

        return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class JsonDiff:
    distance: float
    leaves: int
    paths: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def fraction(self) -> float:
        return min(1.0, self.distance / self.leaves) if self.leaves else 0.0

    @property
    def equal(self) -> bool:
        return self.distance == 0.0


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def leaf_count(value: Any, ignore_keys: frozenset[str] = frozenset(),
               limit: int = 1_000_000) -> int:
    """Leaves under `value` (at least 1), counting at most `limit` nodes."""
    stack, count, seen = [value], 0, 0
    while stack and seen < limit:
        seen += 1
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(v for k, v in item.items() if k not in ignore_keys)
        elif kind is list:
            stack.extend(item)
        else:
            count += 1
    return max(count + len(stack), 1)


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) or a == b
    return bool(a == b) and type(a) is type(b)


# A path is a chain (parent, key) built per node for nothing more than a tuple; it is
# formatted only for the few differences that are reported.
Path = tuple[Any, str | int] | None


def format_path(path: Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "$" + "".join(reversed(parts))


class _Walk:
    """The walk over both documents; JSON as parsed (dict, list, scalars)."""

    def __init__(self, ignore_keys: frozenset[str], missing_equals_empty: bool,
                 max_nodes: int, max_chars: int):
        self.ignore = ignore_keys
        self.missing_empty = missing_equals_empty
        self.budget = max_nodes
        self.max_chars = max_chars
        self.distance = 0.0
        self.leaves = 0
        self.paths: list[str] = []
        self.truncated = False

    def differ(self, path: Path, amount: float, leaves: int = 1) -> None:
        self.distance += amount
        self.leaves += leaves
        if amount and len(self.paths) < MAX_PATHS:
            self.paths.append(format_path(path))

    def run(self, a: Any, b: Any) -> None:
        stack: list[tuple[Path, Any, Any]] = [(None, a, b)]
        pop, push = stack.pop, stack.append
        while stack:
            path, left, right = pop()
            if self.budget <= 0:
                self.truncated = True
                self.differ(path, 0.0 if _deep_equal(left, right) else 1.0)
                continue
            self.budget -= 1
            kind = type(left)
            if kind is type(right) and kind is not dict and kind is not list and left == right:
                self.leaves += 1  # the common case: an equal scalar
            elif kind is dict and type(right) is dict:
                self.objects(path, left, right, push)
            elif kind is list and type(right) is list:
                self.arrays(path, left, right, push)
            else:
                self.mismatch(path, left, right)

    def objects(self, path: Path, a: dict[str, Any], b: dict[str, Any],
                push: Callable[[tuple[Path, Any, Any]], None]) -> None:
        ignore, missing_empty = self.ignore, self.missing_empty
        keys = a.keys() | b.keys() if a.keys() != b.keys() else a.keys()
        for key in sorted(keys, reverse=True):
            if key in ignore:
                continue
            left, right = a.get(key, _ABSENT), b.get(key, _ABSENT)
            if missing_empty and _empty_or_absent(left) and _empty_or_absent(right):
                continue
            push(((path, key), left, right))

    def arrays(self, path: Path, a: list[Any], b: list[Any],
               push: Callable[[tuple[Path, Any, Any]], None]) -> None:
        longest = max(len(a), len(b))
        walked = min(longest, max(self.budget, 1))
        if walked < longest:  # past the budget: the rest counts as one leaf
            self.truncated = True
            self.differ((path, walked), 0.0 if a[walked:] == b[walked:] else 1.0)
        for index in range(walked - 1, -1, -1):
            left = a[index] if index < len(a) else _ABSENT
            right = b[index] if index < len(b) else _ABSENT
            push(((path, index), left, right))

    def mismatch(self, path: Path, a: Any, b: Any) -> None:
        if a is _ABSENT or b is _ABSENT:
            present = b if a is _ABSENT else a
            if not (self.missing_empty and _empty(present)):
                count = self.leaf_count(present)
                self.differ(path, float(count), count)
        elif type(a) in (dict, list) or type(b) in (dict, list):
            if self.missing_empty and _empty(a) and _empty(b):
                return
            count = max(self.leaf_count(a), self.leaf_count(b))
            self.differ(path, float(count), count)
        else:
            self.differ(path, self.scalar(a, b))

    def leaf_count(self, value: Any) -> int:
        count = leaf_count(value, self.ignore, limit=max(self.budget, 1))
        self.budget -= count
        return count

    def scalar(self, a: Any, b: Any) -> float:
        if _same_scalar(a, b):
            return 0.0
        if (isinstance(a, str) and isinstance(b, str)
                and min(len(a), len(b)) >= LONG_STRING):
            divergence, cut = text_divergence(a, b, max_chars=self.max_chars,
                                              case_sensitive=True)
            self.truncated = self.truncated or cut
            return divergence
        return 1.0


def _deep_equal(a: Any, b: Any) -> bool:
    """Python equality, in C: key order is ignored like in the walk (bool == int is the
    one leniency, acceptable past the budget)."""
    return bool(a == b)


def _empty_or_absent(value: Any) -> bool:
    return value is _ABSENT or _empty(value)


def json_diff(a: Any, b: Any, *, ignore_keys: frozenset[str] = frozenset(),
              missing_equals_empty: bool = True, max_nodes: int = 10_000,
              max_chars: int = 10_000) -> JsonDiff:
    walk = _Walk(ignore_keys, missing_equals_empty, max_nodes, max_chars)
    walk.run(a, b)
    return JsonDiff(round(walk.distance, 6), walk.leaves, tuple(walk.paths), walk.truncated)
