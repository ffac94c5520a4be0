"""Whether two answers state the same facts: changed, missing, added, flipped.

Layer: pure core. The facts come from `proxy.comparison.facts`.

Comparing: names, quotes, code and links count as present on the other side when they
appear anywhere in its text (case and accents ignored), so reordering ("The capital is
Paris" / "Paris is the capital") or a name written in lower case is not a change.
Numbers and dates match by value, unit and currency (a number without a unit matches
the same number with one; a year matches a date in that year; a date matches a more
precise date it contains), within the route's relative `number_tolerance`.

- Facts on both sides that the other lacks: a **changed fact** (`Paris → Lyon`).
- A negation that flips a statement the other answer makes (the negated word appears
  un-negated on the other side: "includes API access" / "does not include API
  access"), or a negation that is the only difference between two otherwise equal
  texts: a changed fact. So is yes against no.
- Facts on one side only: the other answer is a subset or superset (`fact_added`,
  `fact_missing`): not a contradiction, but not the same answer either.
- Values (numbers, dates, names) that trade places in otherwise word-for-word identical
  wording, or two runs of words that do around the same wording ("from checking to
  savings" / "from savings to checking", "New York beat Los Angeles" / "Los Angeles
  beat New York"): a changed fact, since who does what to whom changed. Not a list in
  another order ("and", "or" relate both ways), nor a phrase moved to the front.
- Chinese, Japanese and Korean have no capitals: there, a replaced run of ideographs,
  katakana or hangul that appears nowhere in the other answer is a changed fact (a
  reordering is not), next to the numbers.

Known limits: common nouns, verbs and adjectives are not facts ("eggs" vs "butter",
"deleted" vs "archived" are graded by similarity only); unit conversions across systems
and paraphrased negations ("not free" / "costs money") are not understood; in German,
where every noun is capitalised, a paraphrase with other nouns counts as changed facts;
long answers that mention different names differ in facts even when neither is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from proxy.comparison.facts import Fact, Facts, stem
from proxy.comparison.lexicon import ANTONYMS, FUNCTION_WORDS, NEGATING_PREFIXES
from proxy.comparison.prose import fold
from proxy.comparison.similarity import text_divergence
from proxy.comparison.snippet import token_change

_CJK_CONTENT = re.compile(r"[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]|[\uac00-\ud7af]{2}")
_CJK_STRIP = re.compile(r"[的是了在和与及或也都就还而但呢吗吧啊着过把被让给对从向为这那个些"
                        r"\u3040-\u309f\s\W]")


@dataclass(frozen=True, slots=True)
class FactDiff:
    """Facts only in the legacy answer (`missing`), only in the other (`added`), and
    flipped statements (negation, yes/no, replaced CJK runs)."""

    missing: tuple[Fact, ...] = ()
    added: tuple[Fact, ...] = ()
    flips: tuple[str, ...] = ()
    common: bool = False  # the answers share at least one fact (or the same yes/no)

    @property
    def changed(self) -> bool:
        return bool(self.flips) or (bool(self.missing) and bool(self.added))

    @property
    def same(self) -> bool:
        return not (self.flips or self.missing or self.added)

    def evidence(self, limit: int = 10) -> list[str]:
        """Flips, then changed facts paired by kind (`Paris → Lyon`), then the rest; at
        most `limit` items."""
        out = list(self.flips[:limit])
        missing, added = list(self.missing), list(self.added)
        for kind in ("number", "when", "code", "name", "quote", "link"):
            lefts = [f for f in missing if f.kind == kind]
            rights = [f for f in added if f.kind == kind]
            for left, right in zip(lefts, rights, strict=False):
                if len(out) < limit:
                    out.append(_pair(left, right))
                missing.remove(left)
                added.remove(right)
        if self.changed:
            for left, right in zip(missing, added, strict=False):
                out.append(f"{left.surface} → {right.surface}")
            missing, added = missing[len(added):], added[len(missing):]
        out += [f"missing: {f.surface}" for f in missing[:limit]]
        out += [f"added: {f.surface}" for f in added[:limit]]
        return out[:limit]


def _pair(left: Fact, right: Fact) -> str:
    if left.kind == "code" and left.tokens and right.tokens:
        return token_change(left.tokens, right.tokens)
    return f"{left.surface} → {right.surface}"


def _present(fact: Fact, other: Facts) -> bool:
    if fact.kind == "name":  # every word of a name ("buenos aires"), in any place
        return all(word in other.words for word in fact.key.split())
    if fact.kind in ("quote", "link", "code"):
        return _contains(other.flat, fold(fact.key).replace(" ", ""))
    return False


def _contains(flat: str, key: str) -> bool:
    """`key` occurs in `flat` as a whole: not as the start of a longer token
    (`pip install request` is not in `pip install requests`)."""
    start = flat.find(key)
    while start != -1:
        end = start + len(key)
        before = flat[start - 1] if start else " "
        after = flat[end] if end < len(flat) else " "
        if not (_word_char(key[:1]) and _word_char(before)) and not (
                _word_char(key[-1:]) and _word_char(after)):
            return True
        start = flat.find(key, start + 1)
    return False


def _word_char(char: str) -> bool:
    return char.isalnum() or char in "-_"


def _unmatched(mine: list[Fact], theirs: list[Fact], other: Facts,
               tolerance: float) -> tuple[list[Fact], bool]:
    """Facts of `mine` the other answer lacks, and whether any fact of `mine` was found
    in it: names, quotes, code spans and links as a set (present anywhere counts; one
    lacking name is listed once however often it is said), numbers, dates and code
    blocks as a multiset (a value said twice on one side and once on the other is a
    difference: "24 hours ... 24 hours" vs "12 hours ... 24 hours")."""
    keys = {f.key for f in theirs}
    pool = [f for f in theirs if f.kind in ("number", "when") or f.unit == "block"]
    out, seen, matched = [], set(), False
    for fact in mine:
        if fact.unit == "block":  # code blocks: a multiset too, matched only as code
            twin = next((t for t in pool if t.key == fact.key), None)
            if twin is not None:
                pool.remove(twin)
                matched = True
            else:
                out.append(fact)
            continue
        if fact.kind in ("number", "when"):
            match = next((t for t in pool if t.key == fact.key), None) or next(
                (t for t in pool if _same_value(fact, t, tolerance)), None)
            if match is not None:
                pool.remove(match)
                matched = True
            else:
                out.append(fact)
            continue
        if fact.key in seen:
            continue
        if fact.key in keys or _present(fact, other):
            matched = True
            continue
        seen.add(fact.key)
        out.append(fact)
    return out, matched


def _same_value(a: Fact, b: Fact, tolerance: float) -> bool:
    if a.kind == "when" and b.kind == "when":
        return _date_within(a.key, b.key) or _date_within(b.key, a.key)
    if a.kind != b.kind:
        year, date = (a, b) if a.kind == "number" else (b, a)
        return (not year.unit and year.value.is_integer() and 1000 <= year.value < 3000
                and date.key.startswith(f"{int(year.value)}-"))
    if a.unit and b.unit and a.unit != b.unit:
        return False
    if a.unit == "version" or b.unit == "version":
        return False
    return math.isclose(a.value, b.value, rel_tol=max(tolerance, 1e-9), abs_tol=1e-12)


def _date_within(coarse: str, fine: str) -> bool:
    """`2025-03` contains `2025-03-05`; `--03-05` matches `2025-03-05`."""
    if fine.startswith(coarse + "-"):
        return True
    return coarse.startswith("--") and fine.endswith(coarse[1:]) and len(fine) > len(coarse)


def compare_facts(a: Facts, b: Facts, *, tolerance: float = 0.0,
                  a_cut: bool = False, b_cut: bool = False) -> FactDiff:
    """How the facts of `b` differ from those of `a`. A side that was cut (`a_cut`,
    `b_cut`: the capture or the stream stopped early) is not blamed for facts it may
    have stated after the cut."""
    lacking, shared = _unmatched(a.facts, b.facts, b, tolerance)
    missing = [] if b_cut else lacking
    added = [] if a_cut else _unmatched(b.facts, a.facts, a, tolerance)[0]
    flips = _flips(a, b)
    common = shared or (a.polarity is not None and a.polarity == b.polarity)
    return FactDiff(tuple(missing), tuple(added), tuple(flips), common)


def _flips(a: Facts, b: Facts) -> list[str]:
    flips = []
    if a.polarity and b.polarity and a.polarity != b.polarity:
        flips.append(f"{a.polarity} → {b.polarity}")
    for head in sorted(set(a.negated) | set(b.negated)):
        na, nb = a.negated[head], b.negated[head]
        if na == nb:
            continue
        pa, pb = a.positive(head), b.positive(head)
        word = a.heads.get(head) or b.heads.get(head) or head
        if na > nb and pb > pa:
            flips.append(f"not {word} → {word}")
        elif nb > na and pa > pb:
            flips.append(f"{word} → not {word}")
    if not flips and a.negations != b.negations:
        divergence, _ = text_divergence(a.unnegated(), b.unnegated(), max_chars=2000)
        if divergence <= 0.1:
            flips.append("negation: " + ("removed" if a.negations > b.negations else "added"))
    if a.cjk or b.cjk:
        flips += _cjk_changes(a, b)
    return flips


def _cjk_changes(a: Facts, b: Facts) -> list[str]:
    left, right = _CJK_STRIP.sub("", a.cjk or a.clean), _CJK_STRIP.sub("", b.cjk or b.clean)
    changes = []
    for op in Levenshtein.opcodes(left[:2000], right[:2000]):
        if op.tag != "replace":
            continue
        old, new = left[op.src_start:op.src_end], right[op.dest_start:op.dest_end]
        if (_CJK_CONTENT.search(old) and _CJK_CONTENT.search(new)
                and old not in right and new not in left):
            changes.append(f"{old} → {new}")
    return changes[:5]


def _content(words: frozenset[str]) -> frozenset[str]:
    """The stems of content words: contractions opened ("isn't" -> is, not), function
    words and numbers left out."""
    out = set()
    for word in words:
        if word.endswith("n't"):
            word = _CONTRACTIONS.get(word, word[:-3])
        if word in FUNCTION_WORDS or word[:1].isdigit() or len(word) < 2:
            continue
        out.add(stem(word))
    return frozenset(out)


_CONTRACTIONS = {"can't": "can", "won't": "will", "shan't": "shall"}
_ANTONYMS = {(stem(fold(a)), stem(fold(b))) for a, b in ANTONYMS}
_ANTONYMS |= {(b, a) for a, b in _ANTONYMS}
_POLAR = frozenset(a for a, _ in _ANTONYMS)
_OPPOSITES: dict[str, set[str]] = {}
for _a, _b in _ANTONYMS:
    _OPPOSITES.setdefault(_a, set()).add(_b)
_WORDS = re.compile(r"[^\W\d_][\w'-]*")


def wording(a: Facts, b: Facts) -> tuple[list[str], bool]:
    """For two answers that read alike: the statements turned around by a word (an
    antonym, "closed" / "open", or a negating prefix, "available" / "unavailable"), and
    whether content words were replaced (not only moved, reformatted or dropped
    function words): "eggs" / "butter" is not the same answer, though no fact rule
    sees it."""
    if a.cjk or b.cjk:
        return [], False  # no word boundaries to count: the CJK rule covers it
    left, right = _content(a.words - b.words), _content(b.words - a.words)
    only_a, only_b = left - right, right - left
    flips = [f"{x} → {y}" for x in sorted(only_a) for y in sorted(_OPPOSITES.get(x, ()))
             if y in only_b]
    flips += [f"{x} → {y}" for x, y in _prefixed(only_a, only_b)]
    flips += [f"{y} → {x}" for x, y in _prefixed(only_b, only_a)]
    return flips[:5], bool(only_a and only_b)


def _prefixed(words: frozenset[str], others: frozenset[str]) -> list[tuple[str, str]]:
    """(word, its negation) pairs: "available" in `words`, "unavailable" in `others`."""
    return [(other[len(prefix):], other) for other in sorted(others)
            for prefix in NEGATING_PREFIXES
            if other.startswith(prefix) and len(other) - len(prefix) > 3
            and other[len(prefix):] in words]


_SWAPPABLE = ("number", "when", "name")


def swaps(a: Facts, b: Facts) -> list[str]:
    """Values that changed places in otherwise identical wording ("the lower bound is 5
    and the upper 10" / "... 10 and ... 5", "Alice paid Bob" / "Bob paid Alice"). The
    wording around them must be the same word for word (the texts with their values
    taken out are equal), so a reordered sentence that keeps who does what ("The capital
    of France is Paris" / "Paris is the capital of France") is not a swap."""
    left = [f for f in a.facts if f.kind in _SWAPPABLE]
    right = [f for f in b.facts if f.kind in _SWAPPABLE]
    keys_a, keys_b = [f.key for f in left], [f.key for f in right]
    if keys_a != keys_b and sorted(keys_a) == sorted(keys_b) \
            and _skeleton(a, left) == _skeleton(b, right):
        first = next(i for i, (x, y) in enumerate(zip(keys_a, keys_b, strict=True))
                     if x != y)
        if not _listed(a.folded, left[first].surface, right[first].surface):
            return [f"swapped: {left[first].surface} ↔ {right[first].surface}"]
        return []
    return _transposed_words(a, b)


# Words that relate two things both ways: "Paris and London" / "London and Paris".
_BOTH_WAYS = frozenset({"and", "or", "nor", "plus", "both", "either", "neither", "as",
                        "well", "&"})


def _listed(folded: str, one: str, other: str) -> bool:
    """Whether two values stand in a list ("Los Angeles and San Diego"), where their
    order says nothing, rather than in roles ("New York beat Los Angeles")."""
    x, y = fold(one), fold(other)
    start = folded.find(x)
    end = folded.find(y, start + len(x)) if start >= 0 else -1
    if start < 0 or end < 0:
        start = folded.find(y)
        end = folded.find(x, start + len(y)) if start >= 0 else -1
        x = y
    if start < 0 or end < 0:
        return False
    between = folded[start + len(x):end]
    words = _WORDS.findall(between)
    return not between.strip(" ,;") or (bool(words) and set(words) <= _BOTH_WAYS)


_MAX_SWAP_WORDS = 24


def _transposed_words(a: Facts, b: Facts) -> list[str]:
    """Two runs of words that traded places around what stays put ("from checking to
    savings" / "from savings to checking", "New York beat Los Angeles" / "Los Angeles
    beat New York"): common nouns are no facts of their own, and a name opening a
    sentence may not be taken for one, but exchanging two of them turns the statement
    around. The two runs are alike in length (a phrase that moved, as German puts the
    verb second, is no exchange), and what stays between them must carry meaning
    ("beat", "reports to") unless single words traded places: "the capital of France is
    Paris" / "Paris is the capital of France" exchange runs around a bare "is", and say
    the same."""
    words_a, words_b = _WORDS.findall(a.folded), _WORDS.findall(b.folded)
    if len(words_a) != len(words_b) or sorted(words_a) != sorted(words_b):
        return []
    start = 0
    while start < len(words_a) and words_a[start] == words_b[start]:
        start += 1
    end = len(words_a)
    while end > start and words_a[end - 1] == words_b[end - 1]:
        end -= 1
    left, right = words_a[start:end], words_b[start:end]
    if not left or len(left) > _MAX_SWAP_WORDS:
        return []
    for x in range(1, len(left)):
        for y in range(1, len(left) - x + 1):
            first, middle, last = left[:x], left[x:len(left) - y], left[len(left) - y:]
            if right != last + middle + first or first == last:
                continue
            if _swapped_roles(first, middle, last):
                return [f"swapped: {' '.join(first)} ↔ {' '.join(last)}"]
    return []


def _swapped_roles(first: list[str], middle: list[str], last: list[str]) -> bool:
    def meaningful(words: list[str]) -> bool:
        return any(word not in FUNCTION_WORDS for word in words)

    if not meaningful(first) or not meaningful(last) or abs(len(first) - len(last)) > 1:
        return False  # runs of unlike length: a phrase moved (German verb-second order)
    if middle and set(middle) <= _BOTH_WAYS:
        return False  # a list in another order
    return meaningful(middle) or (len(first) == 1 and len(last) == 1)


def _skeleton(facts: Facts, values: list[Fact]) -> str:
    """The answer's wording with its values taken out, in order."""
    text = fold(facts.clean)
    for fact in values:
        token = fold(fact.surface if fact.kind == "name" else fact.key)
        text = text.replace(token, "\x00", 1)
    return " ".join(text.split())


def polar_swaps(a: Facts, b: Facts) -> list[str]:
    """Words with an antonym that changed places ("open on weekdays, closed on
    weekends" / "closed on weekdays, open on weekends"); the caller checks that the
    texts are otherwise aligned."""
    order_a, order_b = _polar(a), _polar(b)
    if order_a == order_b or sorted(order_a) != sorted(order_b):
        return []
    first = next(i for i, (x, y) in enumerate(zip(order_a, order_b, strict=True)) if x != y)
    return [f"swapped: {order_a[first]} ↔ {order_b[first]}"]


def _polar(facts: Facts) -> list[str]:
    """The answer's words that have an antonym, in order."""
    return [w for w in (stem(word) for word in _WORDS.findall(facts.folded)) if w in _POLAR]
