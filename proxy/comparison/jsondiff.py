"""Field-level structural diff of two JSON documents.

Layer: pure core. Objects are compared key by key (so key order never matters), arrays
index by index (order matters: an answer's list order is part of the answer). Every leaf
of the union of both documents counts once; a differing leaf counts 1, except two
strings of 20+ characters, which count their text divergence (a long field with one word
changed is not a fully different field). A key missing on one side counts all the leaves
under it. `fraction` = differing leaves / leaves, in [0, 1].

Every differing leaf is also recorded as a typed `Change` (a changed value, a missing
key or array item, an added one; at most `MAX_CHANGES` kept, all counted) for the
decisive rules in `proxy.comparison.rules`. Numbers compare within a relative
`tolerance` (default 0; the route's `number_tolerance`). Arrays at a path listed in
`sets` (`$.tags`, `$.items[*].labels`: `[*]` stands for any index) are compared as
multisets: order is ignored, a different member is a changed value. When a `prose`
judge is given, two strings of `LONG_STRING`+ characters with at least four spaces are
prose and it decides (a reworded summary is not a changed value unless its facts
changed); without one, they count their text divergence as below.

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from proxy.comparison.similarity import text_divergence

LONG_STRING = 20
MAX_PATHS = 10
MAX_CHANGES = 10
_ABSENT = object()
_EXACT = 2**53  # floats below this are exact integers when integral


def _integral(value: Any) -> Any:
    """`value` with every integral float below 2**53 as an int (`21.0` -> `21`), at any
    depth; strings are left as they are. Keys become strings (as JSON has them), tuples
    lists."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < _EXACT else value
    if isinstance(value, dict):
        return {str(k): _integral(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_integral(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, integral floats as integers (`21.0` -> `21`, only
    numbers, never text inside strings): equal documents give equal strings."""
    value = _integral(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers beyond 64 bits
        import json

        return json.dumps(value, sort_keys=True, separators=(",", ":"))


ChangeKind = Literal["value", "missing", "added", "prose"]


@dataclass(frozen=True, slots=True)
class Change:
    """One differing leaf: `missing` is on the left (legacy) side only, `added` on the
    right only; `prose` is a reworded prose string whose facts agree (not decisive).
    `note` is the prose judge's evidence, if any."""

    path: str
    kind: ChangeKind
    left: Any = None
    right: Any = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ProseVerdict:
    """What a prose judge says about two strings: their divergence, whether a fact
    changed, and the evidence."""

    divergence: float
    changed: bool = False
    note: str = ""


ProseJudge = Callable[[str, str], ProseVerdict]


@dataclass(frozen=True, slots=True)
class JsonDiff:
    distance: float
    leaves: int
    paths: tuple[str, ...] = ()
    truncated: bool = False
    changes: tuple[Change, ...] = ()
    counts: Counter[str] = field(default_factory=Counter)

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


def _same_scalar(a: Any, b: Any, tolerance: float = 0.0) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=max(tolerance, 1e-9), abs_tol=0.0) or a == b
    return bool(a == b) and type(a) is type(b)


def _is_prose(text: str) -> bool:
    return len(text) >= LONG_STRING and text.count(" ") >= 4


# A path is a chain (parent, key) built per node for nothing more than a tuple; it is
# formatted only for the few differences that are reported.
Path = tuple[Any, str | int] | None


def format_path(path: Path, any_index: bool = False) -> str:
    """`$.items[2].sku`; with `any_index`, `$.items[*].sku` (the form of a set path)."""
    parts: list[str] = []
    while path is not None:
        path, key = path
        if isinstance(key, int):
            parts.append("[*]" if any_index else f"[{key}]")
        else:
            parts.append(f".{key}")
    return "$" + "".join(reversed(parts))


class _Walk:
    """The walk over both documents; JSON as parsed (dict, list, scalars)."""

    def __init__(self, ignore_keys: frozenset[str], missing_equals_empty: bool,
                 max_nodes: int, max_chars: int, tolerance: float = 0.0,
                 sets: frozenset[str] = frozenset(), prose: ProseJudge | None = None):
        self.ignore = ignore_keys
        self.missing_empty = missing_equals_empty
        self.budget = max_nodes
        self.max_chars = max_chars
        self.tolerance = tolerance
        self.sets = sets
        self.prose = prose
        self.distance = 0.0
        self.leaves = 0
        self.paths: list[str] = []
        self.changes: list[Change] = []
        self.counts: Counter[str] = Counter()
        self.truncated = False

    def differ(self, path: Path, amount: float, leaves: int = 1,
               change: tuple[ChangeKind, Any, Any, str] | None = None) -> None:
        self.distance += amount
        self.leaves += leaves
        if amount and len(self.paths) < MAX_PATHS:
            self.paths.append(format_path(path))
        if change is not None and (amount or change[0] != "prose"):
            kind, left, right, note = change
            self.counts[kind] += 1
            if len(self.changes) < MAX_CHANGES:
                self.changes.append(Change(format_path(path), kind, left, right, note))

    def run(self, a: Any, b: Any) -> None:
        stack: list[tuple[Path, Any, Any]] = [(None, a, b)]
        pop, push = stack.pop, stack.append
        while stack:
            path, left, right = pop()
            if self.budget <= 0:
                self.truncated = True
                equal = _deep_equal(left, right)
                self.differ(path, 0.0 if equal else 1.0,
                            change=None if equal else self.kind_of(left, right))
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

    def kind_of(self, a: Any, b: Any) -> tuple[ChangeKind, Any, Any, str]:
        if a is _ABSENT:
            return ("added", None, b, "")
        if b is _ABSENT:
            return ("missing", a, None, "")
        return ("value", a, b, "")

    def arrays(self, path: Path, a: list[Any], b: list[Any],
               push: Callable[[tuple[Path, Any, Any]], None]) -> None:
        if self.sets and format_path(path, any_index=True) in self.sets:
            self.multiset(path, a, b)
            return
        longest = max(len(a), len(b))
        walked = min(longest, max(self.budget, 1))
        if walked < longest:  # past the budget: the rest counts as one leaf
            self.truncated = True
            equal = a[walked:] == b[walked:]
            self.differ((path, walked), 0.0 if equal else 1.0,
                        change=None if equal else ("value", a[walked:], b[walked:], ""))
        for index in range(walked - 1, -1, -1):
            left = a[index] if index < len(a) else _ABSENT
            right = b[index] if index < len(b) else _ABSENT
            push(((path, index), left, right))

    def multiset(self, path: Path, a: list[Any], b: list[Any]) -> None:
        """A set path: members compared by canonical form, order ignored."""
        self.budget -= len(a) + len(b)
        left = Counter(canonical_json(_without(v, self.ignore)) for v in a)
        right = Counter(canonical_json(_without(v, self.ignore)) for v in b)
        gone, new = list((left - right).elements()), list((right - left).elements())
        self.leaves += max(len(a), len(b), 1) - max(len(gone), len(new))
        member = (path, "*")
        for index in range(max(len(gone), len(new))):
            old = orjson.loads(gone[index]) if index < len(gone) else _ABSENT
            fresh = orjson.loads(new[index]) if index < len(new) else _ABSENT
            kind = self.kind_of(old, fresh)
            self.differ(member, 1.0, change=kind)

    def mismatch(self, path: Path, a: Any, b: Any) -> None:
        if a is _ABSENT or b is _ABSENT:
            present = b if a is _ABSENT else a
            if not (self.missing_empty and _empty(present)):
                count = self.leaf_count(present)
                self.differ(path, float(count), count, change=self.kind_of(a, b))
        elif type(a) in (dict, list) or type(b) in (dict, list):
            if self.missing_empty and _empty(a) and _empty(b):
                return
            count = max(self.leaf_count(a), self.leaf_count(b))
            self.differ(path, float(count), count, change=("value", a, b, ""))
        else:
            amount, change = self.scalar(a, b)
            self.differ(path, amount, change=change)

    def leaf_count(self, value: Any) -> int:
        count = leaf_count(value, self.ignore, limit=max(self.budget, 1))
        self.budget -= count
        return count

    def scalar(self, a: Any, b: Any) -> tuple[float, tuple[ChangeKind, Any, Any, str] | None]:
        if _same_scalar(a, b, self.tolerance):
            return 0.0, None
        if isinstance(a, str) and isinstance(b, str):
            if self.prose is not None and _is_prose(a) and _is_prose(b):
                verdict = self.prose(a, b)
                kind: ChangeKind = "value" if verdict.changed else "prose"
                return verdict.divergence, (kind, a, b, verdict.note)
            if self.prose is None and min(len(a), len(b)) >= LONG_STRING:
                divergence, cut = text_divergence(a, b, max_chars=self.max_chars,
                                                  case_sensitive=True)
                self.truncated = self.truncated or cut
                return divergence, ("value", a, b, "")
        return 1.0, ("value", a, b, "")


def _deep_equal(a: Any, b: Any) -> bool:
    """Python equality, in C: key order is ignored like in the walk (bool == int is the
    one leniency, acceptable past the budget)."""
    return bool(a == b)


def _empty_or_absent(value: Any) -> bool:
    return value is _ABSENT or _empty(value)


def _without(value: Any, ignore: frozenset[str]) -> Any:
    if not ignore:
        return value
    if isinstance(value, dict):
        return {k: _without(v, ignore) for k, v in value.items() if k not in ignore}
    if isinstance(value, list):
        return [_without(v, ignore) for v in value]
    return value


def json_diff(a: Any, b: Any, *, ignore_keys: frozenset[str] = frozenset(),
              missing_equals_empty: bool = True, max_nodes: int = 10_000,
              max_chars: int = 10_000, tolerance: float = 0.0,
              sets: frozenset[str] = frozenset(), prose: ProseJudge | None = None) -> JsonDiff:
    walk = _Walk(ignore_keys, missing_equals_empty, max_nodes, max_chars, tolerance, sets,
                 prose)
    walk.run(a, b)
    return JsonDiff(round(walk.distance, 6), walk.leaves, tuple(walk.paths), walk.truncated,
                    tuple(walk.changes), walk.counts)
