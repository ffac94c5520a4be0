"""The facts of a prose answer, and whether two answers state the same ones.

Layer: pure core. A fact is a token an answer cannot change without changing what it
says, however small the edit:

- numbers with their unit or currency, dates and times (`proxy.comparison.quantity`:
  `$3.99` == `3.99 USD`, `10%` == `10 percent`, `five` == `5`, `3 PM` == `15:00`);
- proper names and other capitalised tokens not at a sentence start (at a sentence
  start too, unless the word is a common English word: "Paris is ..." counts,
  "Restart the service" does not), and tokens mixing letters and digits (`H100`,
  `GPT-4o`, `utf-8`);
- quoted strings, code spans and code blocks (`proxy.comparison.snippet`: token by
  token, operators included), URLs and e-mail addresses;
- negations (not, no, never, n't, none, without, and common French, Spanish, German
  forms) with the word they negate, and a leading yes/no.

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

import functools
import itertools
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from proxy.comparison import prose
from proxy.comparison.lexicon import (
    COMMON_STARTERS,
    NEGATION_GAP,
    NEGATIONS,
    NO,
    NOT_NEGATING,
    SOFT_YES,
    STARTER_SUFFIXES,
    YES,
)
from proxy.comparison.quantity import Quantity, quantities
from proxy.comparison.similarity import text_divergence
from proxy.comparison.snippet import Snippet, snippets, token_change

# A capitalised word (or one in a script without case), after a French elision.
_CANDIDATE = re.compile(r"\b(?:[ldjmnstc]['’]|qu['’])?[^\W\d_a-z][\w'’.-]*")
_DIGIT = re.compile(r"\d")
_CODE_MARK = "\x01"  # where a code span was, until its tokens go into the clean text
_GROUPED = re.compile(r"(?<=\d)[\u00a0\u202f\u2009](?=\d{3}\b)")
_ID_CHARS = re.compile(r"[\w.-]+")
_NEGATOR = re.compile(  # NEGATIONS, grouped by first letter (measurably faster)
    r"\b(?:n(?:ot?|ever|one|othing|obody|owhere|either|or|icht|ie|iemals|unca|ingun[oa]?"
    r"|enhuma?|on)|without|cannot|kein\w*|ohne|jamais|pas|sans|aucune?|sin|sem)\b"
    r"|\b\w+n't\b")
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?|\d+")
_CLAUSE_WORD = re.compile(r"[^\W\d_][\w'’-]*|\d+|[.,;:!?()]")
_HEADLESS = frozenset({"nothing", "nobody", "nowhere", "rien", "nada", "nichts"})
_ELISION = re.compile(r"^(?:[ldjmnstc]|qu)['’](?=\w)", re.IGNORECASE)
_POSSESSIVE = re.compile(r"['’]s?$")
_POSSESSIVES = re.compile(r"['’]s?\b")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CJK_CONTENT = re.compile(r"[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]|[\uac00-\ud7af]{2}")
_CJK_FUNCTION = re.compile(r"([的是了在和与及或也都就还而但呢吗吧啊着过把被让给对从向为这那个些])")
_CJK_STRIP = re.compile(r"[的是了在和与及或也都就还而但呢吗吧啊着过把被让给对从向为这那个些"
                        r"\u3040-\u309f\s\W]")
_SPACES = re.compile(r"\s+")
_IMPERATIVE_OBJECT = re.compile(
    r"\s+(?:the|a|an|your|my|our|their|its|this|that|these|those|it|them|all|any|each|"
    r"every|some|up|out|off|down|into|back|away|both|either)\b", re.IGNORECASE)

TEXT_KINDS = ("name", "quote", "code", "link")


@dataclass(slots=True)  # built by the hundred per answer: no frozen-init cost
class Fact:
    kind: str  # number, when, name, quote, code, link
    key: str
    surface: str
    value: float = 0.0
    unit: str = ""
    tokens: tuple[str, ...] = ()


@dataclass(slots=True)
class Facts:
    """What `extract` found in one answer."""

    facts: list[Fact] = field(default_factory=list)
    text: str = ""  # the prose with quantities and code in canonical form
    negated: Counter[str] = field(default_factory=Counter)
    negations: int = 0
    folded: str = ""  # the prose, folded: where negations are counted
    counts: Counter[str] | None = None  # its word stems, counted when a negation needs them
    polarity: str | None = None
    refusal: bool = False
    clean: str = ""  # the text the similarity measure sees
    cjk: str = ""

    _words: frozenset[str] | None = None
    _flat: str | None = None

    @property
    def empty(self) -> bool:
        return not self.facts and self.polarity is None

    @property
    def words(self) -> frozenset[str]:
        """The folded words of the answer (built when a name needs looking up)."""
        if self._words is None:
            folded = prose.fold(self.text)
            self._words = frozenset(_WORD.findall(_POSSESSIVES.sub("", folded)))
        return self._words

    @property
    def flat(self) -> str:
        """The folded answer without whitespace: where quotes, code and links are
        looked up."""
        if self._flat is None:
            self._flat = "".join(prose.fold(self.text).split())
        return self._flat


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

    def evidence(self) -> list[str]:
        """Flips, then changed facts paired by kind (`Paris → Lyon`), then the rest."""
        out = list(self.flips)
        missing, added = list(self.missing), list(self.added)
        for kind in ("number", "when", "code", "name", "quote", "link"):
            lefts = [f for f in missing if f.kind == kind]
            rights = [f for f in added if f.kind == kind]
            for left, right in zip(lefts, rights, strict=False):
                out.append(_pair(left, right))
                missing.remove(left)
                added.remove(right)
        if self.changed:
            for left, right in zip(missing, added, strict=False):
                out.append(f"{left.surface} → {right.surface}")
            missing, added = missing[len(added):], added[len(missing):]
        out += [f"missing: {f.surface}" for f in missing]
        out += [f"added: {f.surface}" for f in added]
        return out


def _pair(left: Fact, right: Fact) -> str:
    if left.kind == "code" and left.tokens and right.tokens:
        return token_change(left.tokens, right.tokens)
    return f"{left.surface} → {right.surface}"


def extract(text: str) -> Facts:
    """The facts of one prose answer. Code comes out first (its tokens are facts of
    their own), then markdown, then links, quotes and quantities, then names in what
    is left."""
    text = _prepare(text)
    facts: list[Fact] = []
    codes: list[str] = []
    found_code = snippets(text)
    if found_code:
        parts, position = [], 0
        for snippet in found_code:
            facts.append(_code_fact(snippet, text))
            codes.append(" " + snippet.key + " ")
            parts += [text[position:snippet.start], _CODE_MARK]
            position = snippet.end
        parts.append(text[position:])
        text = "".join(parts)
    text = prose.unmark(text)
    pieces: list[tuple[int, int, str]] = []  # spans replaced in the clean text
    for key, start, end in prose.links(text):
        facts.append(Fact("link", key, text[start:end]))
        pieces.append((start, end, " " + key + " "))
    rest = _blank(text, [(s, e) for s, e, _ in pieces])
    if codes:
        rest = rest.replace(_CODE_MARK, " ")
    for key, surface, _, _ in prose.quotes(rest):
        facts.append(Fact("quote", key, surface))
    found = quantities(rest)
    for q in found:
        facts.append(_quantity_fact(q))
        pieces.append((q.start, q.end, " " + q.key + " "))
    rest = _blank(rest, [(q.start, q.end) for q in found])
    facts += _names(rest)
    result = Facts(facts=facts)
    clean = _replace(text, pieces)
    if codes:
        clean = _restore(clean, codes)
    _clean(result, clean)
    _negations(result, rest)
    return result


def _restore(text: str, codes: list[str]) -> str:
    parts = text.split(_CODE_MARK)
    out = [parts[0]]
    for code, part in zip(codes, parts[1:], strict=False):
        out += [code, part]
    return "".join(out)


def _prepare(text: str) -> str:
    """NFKC (full-width digits, ligatures), thousands grouped by non-breaking spaces
    joined, typographic apostrophes plain."""
    if text.isascii():
        return text
    if "\u00a0" in text or "\u202f" in text or "\u2009" in text:
        text = _GROUPED.sub("", text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.replace("’", "'")


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out, position = [], 0
    for start, end in sorted(spans):
        if start < position:
            continue
        out += [text[position:start], " " * (end - start)]
        position = end
    out.append(text[position:])
    return "".join(out)


def _replace(text: str, pieces: list[tuple[int, int, str]]) -> str:
    out, position = [], 0
    for start, end, replacement in sorted(pieces):
        if start < position:
            continue
        out += [text[position:start], replacement]
        position = end
    out.append(text[position:])
    return "".join(out)


def _code_fact(snippet: Snippet, text: str) -> Fact:
    surface = text[snippet.start:snippet.end].strip("`~ \n")
    if snippet.block:
        surface = surface.split("\n", 1)[-1].strip()
    return Fact("code", snippet.key, _short(surface), unit="block" if snippet.block else "",
                tokens=snippet.tokens)


def _quantity_fact(q: Quantity) -> Fact:
    return Fact(q.kind, q.key, q.surface, q.value, q.unit)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _identifiers(text: str) -> list[Fact]:
    """Tokens mixing letters and digits (`H100`, `utf-8`, `gpt-4o`, `3D`): numbers are
    blanked out before, so a digit left in the text belongs to one."""
    out, end = [], 0
    for m in _DIGIT.finditer(text):
        if m.start() < end:
            continue
        start = m.start()
        while start and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
            start -= 1
        token_match = _ID_CHARS.match(text, start)
        end = token_match.end() if token_match else m.end()
        token = text[start:end].strip(".-")
        if any(c.isalpha() for c in token):
            out.append(Fact("name", prose.fold(token), token))
    return out


def _names(text: str) -> list[Fact]:
    out = _identifiers(text)
    for m in _CANDIDATE.finditer(text):
        raw = m.group(0)
        token = (_ELISION.sub("", raw) if "'" in raw else raw).rstrip(".-'")
        if not token or not token[0].isupper() or (not token.isalpha()
                                                     and _DIGIT.search(token)):
            continue
        start = _sentence_start(text, m.start())
        if _is_name(token, start, text[m.end():m.end() + 12]):
            bare = _POSSESSIVE.sub("", token) if "'" in token else token
            out.append(Fact("name", prose.fold(bare), bare))
    return out


def _sentence_start(text: str, at: int) -> bool:
    """Whether the word at `at` opens a sentence, a line, a parenthesis or a quote."""
    i = at - 1
    while i >= 0 and text[i] in " \t*_#>[`":
        i -= 1
    return i < 0 or text[i] in ".!?:;(\"“«'\n"


def _is_name(token: str, sentence_start: bool, following: str = "") -> bool:
    if token == "I" or token.startswith(("I'", "I’")):
        return False
    if not sentence_start:
        return True
    word = token.lower()
    if "'" in word:
        word = _POSSESSIVE.sub("", word)
    if (word in COMMON_STARTERS or word in YES or word in NO or word in SOFT_YES
            or (len(word) > 4 and word.endswith(STARTER_SUFFIXES))):
        return False
    # "Store the password", "Add a user": a verb with its object, not a name.
    return not _IMPERATIVE_OBJECT.match(following)


def _name_key(token: str) -> str:
    return prose.fold(_POSSESSIVE.sub("", token))


def _clean(result: Facts, text: str) -> None:
    result.text = text
    result.polarity = prose.polarity(text)
    clean = prose.drop_courtesy(text)
    if not clean.isascii() and _CJK.search(clean):
        cjk_chars = len(_CJK.findall(clean))
        if cjk_chars * 3 >= len(clean.replace(" ", "")):
            result.cjk = clean
            clean = _CJK_FUNCTION.sub(r" \1 ", clean)
    result.clean = " ".join(clean.split())
    result.refusal = prose.refused(prose.fold(result.clean[:700]))


@functools.lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    word = _POSSESSIVE.sub("", word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word.rstrip("e") or word


def _negator(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _negations(result: Facts, text: str) -> None:
    """Count the negations and the word each negates (the next word of the clause that
    is not an article or auxiliary: "does not include" -> include)."""
    folded = prose.fold(text)
    result.folded = folded
    first = True
    for m in _NEGATOR.finditer(folded):
        word = m.group(0)
        if first and result.polarity == "no" and not folded[:m.start()].strip(" *_#>\"'"):
            first = False
            continue  # the leading "No," is the yes/no fact, not a negation
        first = False
        after = list(itertools.islice(_CLAUSE_WORD.finditer(folded, m.end()), 6))
        if after and (word, after[0].group(0)) in NOT_NEGATING:
            continue
        result.negations += 1
        if word in _HEADLESS:
            continue
        for w in after:
            head = w.group(0)
            if not head[0].isalnum():
                break  # the clause ended
            if head not in NEGATION_GAP and not _negator(head):
                result.negated[_stem(head)] += 1
                break


def _positive(facts: Facts, head: str) -> int:
    """How often `head` occurs un-negated."""
    if facts.counts is None:
        facts.counts = Counter()
        for word, count in Counter(_WORD.findall(facts.folded)).items():
            facts.counts[_stem(word)] += count
    return facts.counts[head] - facts.negated[head]


def _present(fact: Fact, other: Facts) -> bool:
    if fact.kind == "name":
        return fact.key in other.words
    if fact.kind in ("quote", "link", "code"):
        return fact.key.replace(" ", "") in other.flat
    return False


def _unmatched(mine: list[Fact], theirs: list[Fact], other: Facts,
               tolerance: float) -> list[Fact]:
    """Facts of `mine` the other answer lacks: names, quotes, code spans and links as a
    set (present anywhere counts), numbers, dates and code blocks as a multiset (a value
    said twice on one side and once on the other is a difference: "24 hours ... 24
    hours" vs "12 hours ... 24 hours")."""
    keys = {f.key for f in theirs}
    pool = [f for f in theirs if f.kind in ("number", "when") or f.unit == "block"]
    out, seen = [], set()
    for fact in mine:
        if fact.unit == "block":  # code blocks: a multiset too, matched only as code
            twin = next((t for t in pool if t.key == fact.key), None)
            if twin is not None:
                pool.remove(twin)
            else:
                out.append(fact)
            continue
        if fact.kind in ("number", "when"):
            match = next((t for t in pool if t.key == fact.key), None) or next(
                (t for t in pool if _same_value(fact, t, tolerance)), None)
            if match is not None:
                pool.remove(match)
            else:
                out.append(fact)
            continue
        if fact.key in keys or fact.key in seen or _present(fact, other):
            continue
        seen.add(fact.key)
        out.append(fact)
    return out


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
    missing = [] if b_cut else _unmatched(a.facts, b.facts, b, tolerance)
    added = [] if a_cut else _unmatched(b.facts, a.facts, a, tolerance)
    flips = _flips(a, b)
    shared = _unmatched(a.facts, b.facts, b, tolerance)
    common = len(shared) < len(a.facts) or (a.polarity is not None
                                             and a.polarity == b.polarity)
    return FactDiff(tuple(missing), tuple(added), tuple(flips), common)


def _flips(a: Facts, b: Facts) -> list[str]:
    flips = []
    if a.polarity and b.polarity and a.polarity != b.polarity:
        flips.append(f"{a.polarity} → {b.polarity}")
    for head in sorted(set(a.negated) | set(b.negated)):
        na, nb = a.negated[head], b.negated[head]
        if na == nb:
            continue
        pa, pb = _positive(a, head), _positive(b, head)
        if na > nb and pb > pa:
            flips.append(f"not {head} → {head}")
        elif nb > na and pa > pb:
            flips.append(f"{head} → not {head}")
    if not flips and a.negations != b.negations:
        divergence, _ = text_divergence(_NEGATOR.sub(" ", a.folded),
                                        _NEGATOR.sub(" ", b.folded), max_chars=2000)
        if divergence <= 0.1:
            flips.append("negation: " + ("removed" if a.negations > b.negations else "added"))
    if a.cjk or b.cjk:
        flips += _cjk_changes(a, b)
    return flips


def _cjk_changes(a: Facts, b: Facts) -> list[str]:
    from rapidfuzz.distance import Levenshtein

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
