"""The shape of a prose answer, apart from its facts: markdown and courtesy removed,
links and quoted strings found, refusals and a leading yes/no recognised.

Layer: pure core. `proxy.comparison.facts` uses these pieces; the cleaned text is also
what the similarity measure compares, so formatting (emphasis, list numbering and
bullets, headings, blank lines, table pipes), a leading "Sure!" and trailing courtesy
sentences ("Let me know if you have any other questions!") move no score.

A refusal is recognised by its usual phrasings ("I'm sorry, but I can't help with
that", "I can't assist with", "As an AI", and the commonest French, Spanish, German,
Italian, Portuguese, Chinese and Japanese forms) near the start of a short answer; an
answer that continues past the disclaimer ("I can't give medical advice, but the usual
dose is ...") is an answer, not a refusal.
"""

from __future__ import annotations

import re
import unicodedata

from proxy.comparison.lexicon import (
    CJK_NO,
    CJK_YES,
    COURTESY,
    COURTESY_HINTS,
    HEDGES,
    LEADING_FILLER,
    NO,
    REFUSAL_HINTS,
    REFUSALS,
    SOFT_YES,
    YES,
)

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"'`\]\[]+", re.IGNORECASE)
# Patterns that open with a literal character, so the engine skips to it; what may come
# before it is checked by hand (a lookbehind first would be tried at every position).
_UNIX_PATH = re.compile(r"/(?:[\w.@+-]+/)*[\w.@+-]*[A-Za-z][\w.@+-]*/?")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s\"'<>|]+")
_FILE_SUFFIX = re.compile(
    r"\.(?:json|ya?ml|toml|conf|cfg|ini|txt|md|py|js|ts|tsx|jsx|go|rs|java|rb|php|sh|env"
    r"|lock|xml|html|css|sql|log|csv|tf|gradle|properties|cpp|hpp|cs|swift|kt)\b")
_FLAG = re.compile(r"--?[A-Za-z][\w-]*(?:=[^\s,;)]+)?")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_QUOTES = (  # (opening character, expression): each run only when its character occurs
    ('"', re.compile(r'"(?P<q>[^"\n]{1,200})"')),
    ("“", re.compile(r"“(?P<q>[^”\n]{1,200})”")),
    ("«", re.compile(r"«\s?(?P<q>[^»\n]{1,200}?)\s?»")),
    ("「", re.compile(r"「(?P<q>[^」\n]{1,200})」")),
    ("『", re.compile(r"『(?P<q>[^』\n]{1,200})』")),
    ("„", re.compile(r"„(?P<q>[^“\n]{1,200})“")),
    ("'", re.compile(r"['‘](?P<q>[^'’\n]{1,200})['’](?![\w’'])")),
    ("‘", re.compile(r"['‘](?P<q>[^'’\n]{1,200})['’](?![\w’'])")),
)
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|~~)(?=\S)([^\n]{1,300}?)(?<=\S)\1(?![\w*])")
_LINE_MARKER = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+•][ \t]+|\d{1,3}[.)][ \t]+"
                          r"|[-*_]{3,}[ \t]*$)", re.MULTILINE)
_TABLE = re.compile(r"\|(?:\s*:?-{3,}:?\s*\|)*")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_FIRST_WORD = re.compile(r"[\W_]*([^\W\d_]+(?:\s+course)?)(?P<after>[^\w\s]?)", re.UNICODE)
_ANSWER_LEAD = re.compile(r"^(?:in short|short answer|the short answer is|tl;dr|answer)\b"
                          r"\s*[:,—–-]?\s*", re.IGNORECASE)
_HEADING_LINE = re.compile(r"^[ \t]{0,3}(?:#{1,6}[ \t]+.*|\*\*[^*\n]+\*\*:?[ \t]*)$",
                           re.MULTILINE)
_COMBINING = re.compile(r"[\u0300-\u036f]")


def fold(text: str) -> str:
    """Case-folded, accents removed: the form facts are matched in."""
    text = text.casefold()
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFD", text))


def links(text: str) -> list[tuple[str, int, int]]:
    """URLs and e-mail addresses: (normalised, start, end)."""
    found: list[tuple[str, int, int]] = []
    if "://" not in text and "www." not in text and "@" not in text:
        return found
    for m in _URL.finditer(text):
        raw = m.group(0).rstrip(".,;:!?)*_")
        url = raw.lower() if "/" not in raw.split("//", 1)[-1] else _normal_url(raw)
        found.append((url.rstrip("/"), m.start(), m.start() + len(raw)))
    for m in _EMAIL.finditer(text) if "@" in text else ():
        if not any(s <= m.start() < e for _, s, e in found):
            found.append((m.group(0).lower(), m.start(), m.end()))
    return found


def paths(text: str) -> list[tuple[str, str, int, int]]:
    """File paths, file names and command-line flags in prose: (kind, key, start, end).
    `/etc/nginx/nginx.conf`, `C:\\Users`, `package.json`, `--force`, `-rf` name what to
    touch; a different one is a different instruction."""
    found: list[tuple[str, str, int, int]] = []
    if "/" in text:
        for m in _UNIX_PATH.finditer(text):
            start = m.start()
            while start and text[start - 1] in "~.":
                start -= 1
            if not start or not (text[start - 1].isalnum() or text[start - 1] in "_/.:-"):
                found.append(_path(text[start:m.end()], start))
    if ":\\" in text:
        found += [_path(m.group(0), m.start()) for m in _WINDOWS_PATH.finditer(text)]
    for m in _FILE_SUFFIX.finditer(text) if "." in text else ():
        start = m.start()
        while start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            start -= 1
        if start < m.start() and (not start or text[start - 1] not in "./"):
            found.append(_path(text[start:m.end()], start))
    if "-" in text:
        found += [("code", m.group(0), m.start(), m.end()) for m in _FLAG.finditer(text)
                  if not m.start() or not (text[m.start() - 1].isalnum()
                                           or text[m.start() - 1] in "_-")]
    return found


def _path(raw: str, start: int) -> tuple[str, str, int, int]:
    raw = raw.rstrip(".,;:!?)")
    return "link", raw.lower(), start, start + len(raw)


def _normal_url(url: str) -> str:
    _, sep, rest = url.partition("://")
    if not sep:
        rest = url
    host, slash, path = rest.partition("/")
    host = host.lower().removeprefix("www.")
    return f"{host}{slash}{path}"


def quotes(text: str) -> list[tuple[str, str, int, int]]:
    """Quoted strings: (normalised content, content as written, start, end)."""
    found: list[tuple[str, str, int, int]] = []
    seen: set[int] = set()
    for char, pattern in _QUOTES:
        if char not in text:
            continue
        for m in pattern.finditer(text):
            if m.start() in seen or (char in "'‘" and m.start() and (
                    text[m.start() - 1].isalnum() or text[m.start() - 1] in "_’'")):
                continue  # an apostrophe ("don't"), not an opening quote
            seen.add(m.start())
            inner = m.group("q")
            key = " ".join(fold(inner).split()).strip(".,;:!? ")
            if key:
                found.append((key, inner.strip(), m.start(), m.end()))
    found.sort(key=lambda q: q[2])
    return found


def unmark(text: str) -> str:
    """Markdown formatting removed: emphasis, headings, list markers, quotes, rules,
    table pipes; lines kept. Heading lines are lower-cased (but for acronyms): their
    Title Case is typography, not names."""
    if "#" in text or "**" in text:
        text = _HEADING_LINE.sub(_quiet, text)
    text = _LINE_MARKER.sub("", text)
    if "*" in text or "_" in text or "~" in text:
        text = _EMPHASIS.sub(_unemphasise, text)
    if "|" in text:
        text = _TABLE.sub(" ", text)
    return text


def _unemphasise(m: re.Match[str]) -> str:
    """The emphasised text without its markers; an underscore inside a word
    (`snake_case`) is not emphasis."""
    start = m.start()
    if start and (m.string[start - 1].isalnum() or m.string[start - 1] in "_*"):
        return m.group(0)
    return m.group(2)


def _quiet(m: re.Match[str]) -> str:
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower()
                    for w in m.group(0).split(" "))


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def drop_courtesy(text: str) -> str:
    """Without a leading filler ("Sure!") and trailing courtesy sentences (looked for in
    the last 400 characters)."""
    text = LEADING_FILLER.sub("", text, count=1)
    tail = text[-400:].lower()
    if not any(hint in tail for hint in COURTESY_HINTS):
        return text
    head, tail = text[:-400], text[-400:]
    parts = sentences(tail)
    while (len(parts) > 1 or head.strip()) and parts and len(parts[-1]) < 160 and (
            COURTESY.search(parts[-1])):
        parts.pop()
    return head + " " + " ".join(parts)


def polarity(text: str) -> str | None:
    """`yes` or `no` when the answer opens with one (in a few languages), else None."""
    stripped = _ANSWER_LEAD.sub("", text.lstrip(" \t\n*_#>-\"'“"), count=1)
    for word in CJK_NO:
        if stripped.startswith(word) and stripped[len(word):len(word) + 1] in "，,。.！!、":
            return "no"
    for word in CJK_YES:
        if stripped.startswith(word) and stripped[len(word):len(word) + 1] in "，,。.！!、":
            return "yes"
    m = _FIRST_WORD.match(stripped)
    if not m:
        return None
    word = fold(m.group(1))
    after = stripped[m.end(1):m.end(1) + 1]
    end = not after or not after.isalnum()
    if word in YES and end:
        return "yes"
    if word in NO and end and (after in ",.!;:—–-" or not after or len(stripped) <= 3):
        return "no"
    if (word in SOFT_YES or word == "of course") and after in ",.!;:—–-" and after:
        return "yes"
    return None


def refused(text: str) -> bool:
    """Whether a (cleaned, folded) answer is a refusal rather than an answer: a refusal
    phrase in its first 200 characters, and not much after it (a disclaimer followed by
    an answer is an answer)."""
    head = text[:200]
    if not any(hint in head for hint in REFUSAL_HINTS):
        return False
    m = REFUSALS.search(head)
    if m is None:
        return False
    rest = text[m.end():]
    if len(rest) > 300:
        return False
    hedge = HEDGES.search(rest)
    return not (hedge and len(rest) - hedge.end() > 40)
