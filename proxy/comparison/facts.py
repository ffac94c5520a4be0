"""The facts of a prose answer: what a text cannot change without changing what it says.

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

Comparing two answers' facts is `proxy.comparison.agreement`.
"""

from __future__ import annotations

import functools
import itertools
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
from proxy.comparison.snippet import Snippet, snippets

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
_CLAUSE_WORD = re.compile(r"[^\W\d_][\w'’-]*|\d+|[.,;:!?()]")
_CLAUSE_OPENERS = frozenset({"if", "when", "unless", "because", "and", "or", "but", "so",
                             "while", "although", "whether", "than", "si", "wenn", "und"})
_HEADLESS = frozenset({"nothing", "nobody", "nowhere", "rien", "nada", "nichts"})
_ELISION = re.compile(r"^(?:[ldjmnstc]|qu)['’](?=\w)", re.IGNORECASE)
_POSSESSIVE = re.compile(r"['’]s?$")
_POSSESSIVES = re.compile(r"['’]s?\b")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CJK_FUNCTION = re.compile(r"([的是了在和与及或也都就还而但呢吗吧啊着过把被让给对从向为这那个些])")
_IMPERATIVE_OBJECT = re.compile(
    r"\s+(?:the|a|an|your|my|our|their|its|this|that|these|those|it|them|all|any|each|"
    r"every|some|up|out|off|down|into|back|away|both|either)\b", re.IGNORECASE)

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
    lookup: str | None = None  # where the other answer's facts are looked up (or text)
    negated: Counter[str] = field(default_factory=Counter)
    heads: dict[str, str] = field(default_factory=dict)  # a negated stem, as written
    negations: int = 0
    folded: str = ""  # the prose, folded: where negations are counted
    # Its words counted, by their first two letters (built when a negation needs them).
    counts: dict[str, list[tuple[str, int]]] | None = None
    polarity: str | None = None
    refusal: bool = False
    clean: str = ""  # the text the similarity measure sees
    cjk: str = ""

    _words: frozenset[str] | None = None
    _flat: str | None = None

    def positive(self, head: str) -> int:
        """How often the stem `head` occurs un-negated."""
        if self.counts is None:
            self.counts = {}
            for word, count in Counter(_split_words(self.folded)).items():
                self.counts.setdefault(word[:2], []).append((word, count))
        total = sum(count for word, count in self.counts.get(head[:2], ())
                    if stem(word) == head)
        return total - self.negated[head]

    def unnegated(self) -> str:
        """The folded prose without its negation words."""
        return _NEGATOR.sub(" ", self.folded)

    @property
    def words(self) -> frozenset[str]:
        """The folded words of the answer (built when a name needs looking up)."""
        if self._words is None:
            folded = prose.fold(self.lookup or self.text)
            self._words = frozenset(_split_words(_POSSESSIVES.sub("", folded)))
        return self._words

    @property
    def flat(self) -> str:
        """The folded answer without whitespace: where quotes, code and links are
        looked up."""
        if self._flat is None:
            self._flat = "".join(prose.fold(self.lookup or self.text).split())
        return self._flat


_EDGES = "\"'“”‘’«»()[]{}<>.,;:!?*_`#|/\\~"


def _split_words(folded: str) -> list[str]:
    """The words of a folded text, split on whitespace with punctuation trimmed (faster
    than an expression); a dotted or hyphenated word counts whole and in parts."""
    out = []
    for char in "/—–(),":  # str.replace: much faster than str.translate here
        if char in folded:
            folded = folded.replace(char, " ")
    for word in folded.split():
        word = word.strip(_EDGES)
        if word:
            out.append(word)
            if "." in word or "-" in word:  # node.js is also node, gpt-4o also gpt
                out += [part for part in re.split(r"[.-]", word) if part]
    return out


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
    taken = [(s, e) for s, e, _ in pieces]
    for kind, key, start, end in prose.paths(text):
        if all(end <= s or start >= e for s, e in taken):
            facts.append(Fact(kind, key, text[start:end]))
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
    """Capitalised tokens that are names; consecutive ones separated by one space are one
    name ("Buenos Aires", "South Korea"), so a changed place reads as one change."""
    out = _identifiers(text)
    run: list[str] = []
    end = -1
    for m in _CANDIDATE.finditer(text):
        raw = m.group(0)
        token = (_ELISION.sub("", raw) if "'" in raw else raw).rstrip(".-'")
        if not token or not token[0].isupper() or (not token.isalpha()
                                                     and _DIGIT.search(token)):
            continue
        start = _sentence_start(text, m.start())
        if not _is_name(token, start, text[m.end():m.end() + 12]):
            continue
        bare = _POSSESSIVE.sub("", token) if "'" in token else token
        joins = run and text[end:m.start()] == " " and raw.startswith(token)
        if not joins and run:
            out.append(_name(run))
            run = []
        run.append(bare)
        end = m.start() + len(token)
        if bare != token:  # a possessive ends the name
            out.append(_name(run))
            run = []
    if run:
        out.append(_name(run))
    return out


def _name(words: list[str]) -> Fact:
    surface = " ".join(words)
    return Fact("name", prose.fold(surface), surface)


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
    if "'" in word:  # "You'll", "It's", "Paris's"
        word = word.split("'")[0]
    if (word in COMMON_STARTERS or word in YES or word in NO or word in SOFT_YES
            or (len(word) > 4 and word.endswith(STARTER_SUFFIXES))):
        return False
    # "Store the password", "Add a user": a verb with its object, not a name.
    return not _IMPERATIVE_OBJECT.match(following)


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
def stem(word: str) -> str:
    """A crude stem: possessive, plural, -ed and -ing endings and a final e dropped."""
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
    aligned = len(folded) == len(text)  # positions in `folded` are positions in `text`
    first = True
    for m in _NEGATOR.finditer(folded):
        word = m.group(0)
        if first and result.polarity == "no" and not folded[:m.start()].strip(" *_#>\"'"):
            first = False
            continue  # the leading "No," is the yes/no fact, not a negation
        first = False
        if aligned and text[m.start()].isupper() and not _sentence_start(text, m.start()):
            continue  # "returns None": a name (Python's None), not a negation
        after = list(itertools.islice(_CLAUSE_WORD.finditer(folded, m.end()), 6))
        if after and (word, after[0].group(0)) in NOT_NEGATING:
            continue
        result.negations += 1
        if word in _HEADLESS:
            continue
        for w in after:
            head = w.group(0)
            if not head[0].isalnum() or head in _CLAUSE_OPENERS:
                break  # the clause ended
            if head not in NEGATION_GAP and not _negator(head):
                root = stem(head)
                result.negated[root] += 1
                result.heads.setdefault(root, head)
                break


