"""Code in an answer: fenced code blocks and inline code spans, as token sequences.

Layer: pure core. Code is compared token by token, operators included, because one
character of code is a different program (`>=` vs `>`, `json.load` vs `json.loads`,
`-r` vs `-rf`). Whitespace and indentation between tokens are not tokens; comments are
dropped (`#` comments for languages that use them, or when the fence names no language;
`//` and `/* */` for C-like ones), so a reworded comment is not a changed program. The
fence's language tag is not compared (`python` vs `py`).

Known limits: a renamed variable is a changed token (the rules cannot tell a harmless
rename from a changed identifier); indentation-only changes to Python blocks are not
seen; a fence left open runs to the end of the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n"
                    r"(?P<body>.*?)(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
                    re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"(?<!`)(`{1,2})(?!`)(?P<body>[^`\n]+?)(?<!`)\1(?!`)")
_TOKEN = re.compile(
    r"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|[^\W\d]\w*|\d[\w.]*"
    r"|===|!==|==|!=|<=|>=|=>|->|<<=|>>=|<<|>>|&&|\|\||\*\*|//|::|:=|\+\+|--|\+=|-=|"
    r"\*=|/=|%=|&=|\|=|\^=|\.\.\.|\.\.|\S")
def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_HASH_COMMENT_LANGS = _set(
    "python py sh bash shell zsh console yaml yml toml ruby rb r perl pl dockerfile make "
    "makefile ini conf cfg properties powershell ps1 nix elixir ex julia jl tcl graphql "
    "")
_SLASH_COMMENT_LANGS = _set(
    "c cpp c++ cc h hpp cs csharp java js javascript jsx ts typescript tsx go golang rust "
    "rs kotlin kt swift scala php dart groovy json5 jsonc css scss less sass proto "
    "solidity zig")
_HASH_COMMENT = re.compile(r"(?:^|(?<=\s))#(?![!\[{])[^\n]*")
_SLASH_COMMENT = re.compile(r"(?:^|(?<=\s))//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(slots=True)  # built by the hundred per answer: no frozen-init cost
class Snippet:
    """One code block or span: its tokens, and where it was in the answer."""

    tokens: tuple[str, ...]
    start: int
    end: int
    block: bool

    @property
    def key(self) -> str:
        return " ".join(self.tokens)


def _strip_comments(body: str, lang: str) -> str:
    lang = lang.lower()
    if lang in _SLASH_COMMENT_LANGS:
        return _SLASH_COMMENT.sub(" ", body)
    if lang in _HASH_COMMENT_LANGS or not lang:
        body = _HASH_COMMENT.sub(" ", body)
    if not lang:
        body = _SLASH_COMMENT.sub(" ", body)
    return body


def tokens(code: str, lang: str = "") -> tuple[str, ...]:
    """The tokens of a piece of code, comments removed."""
    return tuple(_TOKEN.findall(_strip_comments(code, lang)))


def snippets(text: str) -> list[Snippet]:
    """Fenced blocks first, then inline spans outside them, in order of appearance."""
    found: list[Snippet] = []
    blocks: list[tuple[int, int]] = []
    if "```" in text or "~~~" in text:
        for m in _FENCE.finditer(text):
            found.append(Snippet(tokens(m.group("body"), m.group("lang")), m.start(),
                                 m.end(), True))
            blocks.append((m.start(), m.end()))
    if "`" in text:
        for m in _SPAN.finditer(text):
            if any(s <= m.start() < e for s, e in blocks):
                continue
            found.append(Snippet(tokens(m.group("body")), m.start(), m.end(), False))
    found.sort(key=lambda s: s.start)
    return found


def token_change(a: tuple[str, ...], b: tuple[str, ...], context: int = 2) -> str:
    """The first place two token sequences differ, with a little context on each side:
    `x >= 18 → x > 18`."""
    first = 0
    while first < min(len(a), len(b)) and a[first] == b[first]:
        first += 1
    last_a, last_b = len(a), len(b)
    while last_a > first and last_b > first and a[last_a - 1] == b[last_b - 1]:
        last_a, last_b = last_a - 1, last_b - 1
    start = max(0, first - context)
    left = " ".join(a[start:min(last_a + context, len(a))][:12]) or "(nothing)"
    right = " ".join(b[start:min(last_b + context, len(b))][:12]) or "(nothing)"
    return f"{left} → {right}"
