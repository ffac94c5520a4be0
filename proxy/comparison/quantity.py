"""Numbers, amounts of money, dates and times found in prose, normalised so that two
ways of writing the same value compare equal.

Layer: pure core. `quantities(text)` returns every value with its span in the text;
`proxy.comparison.facts` blanks the spans out before it looks for names, and puts the
canonical form into the text the similarity measure sees.

Normalisation: thousands separators (`1,000`, `1 000` with a non-breaking space) and
trailing zeros (`2.50`) vanish; a decimal comma with one or two digits (`3,5`) is a
decimal point; `k`, `M`, `bn`, `million`, `billion` multiply; number words (`seven`,
`twenty-five`, `a dozen`, `half an hour`) are numbers; units take one canonical name per
family with a factor (`60 minutes` == `1 hour`, `800 m` == `0.8 km`, `10 percent` ==
`10%`); currency symbols and codes become ISO codes (`$3.99` == `3.99 USD`); dates
become ISO-like keys (`March 5, 2025` == `5 March 2025` == `2025-03-05`; a date without
a year is `--03-05`), times a 24-hour clock (`3 PM` == `15:00`), weekdays and relative
days (`tomorrow`) keys of their own.

Known limits: no conversion across unit systems (`5 miles` vs `8 km` differ); `03/05`
dates are kept as written (month and day order is ambiguous); a number followed by an
unknown word keeps no unit (`5 apples` == `5 oranges` as numbers); versions with three
or more parts (`3.12.1`) are compared as strings; `one` is a number only where it
counts something (not in `one of`, `the one`, `no one`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from proxy.comparison.lexicon import (
    CENTS,
    CURRENCY_SYMBOLS,
    CURRENCY_WORDS,
    MONTHS,
    MULTIPLIERS,
    NUMBER_WORDS,
    RELATIVE_DAYS,
    SCALE_WORDS,
    UNITS,
    WEEKDAYS,
)


@dataclass(slots=True)  # built by the hundred per answer: no frozen-init cost
class Quantity:
    """A value found in the text. `kind` is `number` (with `unit`, possibly a currency
    code or empty) or `when` (dates, times, weekdays: `key` says which)."""

    kind: str
    key: str
    surface: str
    start: int
    end: int
    value: float = 0.0
    unit: str = ""


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_CURRENCY_BEFORE = (_alternation([s for s in CURRENCY_SYMBOLS if not s.isalpha()])
                    + r"|\b(?:" + _alternation(
                        [w for w in (*CURRENCY_WORDS, "chf") if len(w) == 3]) + r")\b")
_NUMBER_WORD = _alternation([*NUMBER_WORDS, *SCALE_WORDS])

_AMPM = r"(?:a\.m\.|p\.m\.|am|pm)"
_DIGITS = re.compile(r"\d+")
_PUNCTUATION = ".,;:!?()[]{}\"'*_`/–—0123456789"
# Every pattern below is matched at a known position (a digit run or a word found by the
# two scans in `quantities`), never searched for: a 1 KB answer takes about 0.1 ms.
_PREFIX = re.compile(rf"(?:{_CURRENCY_BEFORE})\s?(?:[-−+])?$|(?<![\w.,])[-−+]$",
                     re.IGNORECASE)
_NUMBER = re.compile(
    r"(?P<num>\d+(?:\.\d+){2,}|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+,\d{1,2}(?![\d,])|\d+(?:\.\d+)?)"
    r"(?P<ord>st|nd|rd|th)?", re.IGNORECASE)
_WORD_NUMBER = re.compile(
    rf"(?P<words>(?:{_NUMBER_WORD})(?:(?:\s+and\s+|[\s-]+)(?:{_NUMBER_WORD}))*)\b",
    re.IGNORECASE)
# The word (or sign) after a number: a multiplier, a unit or a currency, looked up in
# the lexicon's tables rather than matched by a long alternation.
_TAIL = re.compile(
    r"(?P<space>\s?-?)(?P<word>[^\W\d_]+(?:/[a-z]+)?|%|°\s?[cCfF]\b|[℃℉×€£$¥₹])")
_ATTACHED_LETTER = re.compile(r"[A-Za-z0-9]")
_MARKED = re.compile(r"[$€£¥₹₩₽₺₪+−-]|[A-Z]{3}\s?$")  # a currency or sign may precede
_HALF = re.compile(r"half\s+(?:an?\s+)?", re.IGNORECASE)
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])")
_DOTTED_DATE = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\d.])")
_SLASH_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{2,4})(?![\d/])")
_DAY_BEFORE = re.compile(r"(?<!\d)(?P<d1>\d{1,2})(?:st|nd|rd|th|er)?\.?\s+(?:of\s+|de\s+)?$",
                         re.IGNORECASE)
_MONTH_AFTER = re.compile(
    r"(?P<month>[^\W\d_]+)\.?"
    r"(?:\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?(?![\d:]))?"
    r"(?:,?\s+(?:de\s+)?(?P<year>\d{4})(?!\d))?",
    re.IGNORECASE)
_TIME = re.compile(
    rf"(?<![\d:.])(?P<h>\d{{1,2}})(?:[:h](?P<m>\d{{2}})(?::(?P<s>\d{{2}}))?)?"
    rf"(?:\s?(?P<ampm>{_AMPM})(?![A-Za-z])|\s?(?P<uhr>uhr)\b)?(?![\d:])",
    re.IGNORECASE)
_NOT_COUNTING_ONE = re.compile(r"(?:the|this|that|which|each|any|every|no|only|another|"
                               r"some)\s+$", re.IGNORECASE)
_ONE_FOLLOWERS = re.compile(r"\s*(?:of|another|'s|or more|by one)\b", re.IGNORECASE)
_TRIGGERS = frozenset([*MONTHS, *WEEKDAYS, *RELATIVE_DAYS, *NUMBER_WORDS, *SCALE_WORDS,
                       "noon", "midnight", "half"])


@functools.lru_cache(maxsize=512)
def _trigger(words: tuple[str, ...]) -> re.Pattern[str]:
    """An expression for the trigger words one text contains (few, and often the same
    few: cached)."""
    return re.compile(r"\b(?:" + _alternation(list(words)) + r")\b", re.IGNORECASE)


def quantities(text: str) -> list[Quantity]:
    """Every date, time and number in `text`, left to right, spans not overlapping:
    words first (month names, weekdays, number words), then digit runs."""
    found: list[Quantity] = []
    taken = bytearray(len(text) + 1)
    triggers = _TRIGGERS.intersection([w.strip(_PUNCTUATION) for w in text.lower().replace(
        "-", " ").split()])
    for m in _trigger(tuple(sorted(triggers))).finditer(text) if triggers else ():
        if taken[m.start()]:
            continue
        item = _at_word(text, m)
        if item is not None and not any(taken[item.start:item.end]):
            found.append(item)
            taken[item.start:item.end] = b"\x01" * (item.end - item.start)
    for m in _DIGITS.finditer(text):
        if taken[m.start()]:
            continue
        item = _at_digits(text, m.start(), m.end())
        if item is not None and not any(taken[item.start:item.end]):
            found.append(item)
            taken[item.start:item.end] = b"\x01" * (item.end - item.start)
    found.sort(key=lambda q: q.start)
    return found


def _at_word(text: str, m: re.Match[str]) -> Quantity | None:
    word = m.group(0).lower()
    if word in MONTHS:
        return _named_date(text, m.start())
    if word in WEEKDAYS:
        return _when("weekday:" + WEEKDAYS[word], m)
    if word in RELATIVE_DAYS:
        return _when("day:" + RELATIVE_DAYS[word], m)
    if word in ("noon", "midnight"):
        return _when("12:00" if word == "noon" else "00:00", m)
    if word in NUMBER_WORDS or word in SCALE_WORDS:
        return _word_number(text, m.start())
    if word == "half":
        return _half(text, m.start())
    return None


def _at_digits(text: str, start: int, end: int) -> Quantity | None:
    following = text[end:end + 4].lstrip(" ")[:1].lower()
    for pattern, builder, signs in _DIGIT_FORMS:
        if following and following in signs:
            m = pattern.match(text, start)
            item = builder(m) if m is not None else None
            if item is not None:
                return item
    return _number(text, start)


def _when(key: str, m: re.Match[str]) -> Quantity:
    return Quantity("when", key, m.group(0).strip(), m.start(), m.end())


def _date_key(year: str | None, month: int, day: str | None) -> str:
    parts = [year or "-", f"{month:02d}"]
    if day:
        parts.append(f"{int(day):02d}")
    return "-".join(parts)


def _iso(m: re.Match[str]) -> Quantity | None:
    if 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31:
        return _when(_date_key(m.group(1), int(m.group(2)), m.group(3)), m)
    return None


def _dotted(m: re.Match[str]) -> Quantity | None:
    if 1 <= int(m.group(2)) <= 12:
        return _when(_date_key(m.group(3), int(m.group(2)), m.group(1)), m)
    return None


def _slashed(m: re.Match[str]) -> Quantity:
    return _when("/".join(str(int(part)) for part in m.groups()), m)


def _named_date(text: str, start: int) -> Quantity | None:
    """A date around a month name: `March 5, 2025`, `5 March 2025`, `5th of March`,
    `March 2025`, or a month alone when it is written as a name."""
    d1, month_at = None, start
    before = _DAY_BEFORE.search(text, max(0, start - 12), start)
    if before is not None:
        d1, start = before.group("d1"), before.start()
    m = _MONTH_AFTER.match(text, month_at)
    if m is None or m.group("month").lower() not in MONTHS:
        return None
    month_word = m.group("month")
    day, year = d1 or m.group("d2"), m.group("year")
    if not (day or year) and not _standalone_month(month_word):
        return None
    if day and not 1 <= int(day) <= 31:
        return None
    key = _date_key(year, MONTHS[month_word.lower()], day)
    return Quantity("when", key, text[start:m.end()].strip(), start, m.end())


def _standalone_month(word: str) -> bool:
    """A month name alone is a date only when written as a name: capitalised, in full,
    and not one that is also a common word."""
    return (word[:1].isupper() and len(word) > 3
            and word.lower() not in ("may", "march", "mars", "mai"))


def _time(m: re.Match[str]) -> Quantity | None:
    if m.group("m") is None and m.group("ampm") is None and m.group("uhr") is None:
        return None
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    ampm = (m.group("ampm") or "").lower().replace(".", "")
    if ampm and not 1 <= hour <= 12:
        return None
    if ampm == "pm" and hour != 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour > 24 or minute > 59:
        return None
    seconds = int(m.group("s") or 0)
    return _when(f"{hour:02d}:{minute:02d}" + (f":{seconds:02d}" if seconds else ""), m)


def _parse_digits(raw: str) -> tuple[float | None, str]:
    """(value, version string) of the digits as written."""
    if raw.count(".") >= 2:
        return None, raw
    if re.fullmatch(r"\d+,\d{1,2}", raw):
        raw = raw.replace(",", ".")
    return float(raw.replace(",", "")), ""


def _number(text: str, start: int) -> Quantity | None:
    if start and (text[start - 1].isascii() and (text[start - 1].isalnum()
                                                 or text[start - 1] in "_.")):
        return None
    if start > 1 and text[start - 1] == "-" and text[start - 2].isascii() and text[
            start - 2].isalpha():
        return None  # GPT-4, utf-8: part of a name
    m = _NUMBER.match(text, start)
    if m is None:
        return None
    before = text[max(0, start - 6):start]
    prefix = (_PREFIX.search(text, max(0, start - 6), start)
              if before and _MARKED.search(before) else None)
    begin = prefix.start() if prefix is not None else start
    pre = prefix.group(0).strip(" -−+") if prefix is not None else ""
    negative = prefix is not None and prefix.group(0).rstrip().endswith(("-", "−"))
    value, version = _parse_digits(m.group("num"))
    if value is None:
        return Quantity("number", "v" + version, text[begin:m.end()], begin, m.end(),
                        unit="version")
    if negative:
        value = -value
    tail = _tail(text, m.end(), money=bool(pre))
    if tail is None:
        return None
    end, mult, unit_word, post = tail
    currency = _currency(pre or None, post or None)
    value *= mult
    unit = "#" if m.group("ord") else currency
    if post and post.lower() in CENTS:
        value, unit = value / 100, "usd"
    if unit_word and not currency:
        unit, value = _unit(unit_word, value)
    return _quantity(text[begin:end].strip(), begin, end, value, unit)


def _tail(text: str, at: int, money: bool) -> tuple[int, float, str, str] | None:
    """(end, multiplier, unit, currency) of what follows a number, or None when a
    letter is glued to it that is none of these (`4o`, `3D`: part of a name)."""
    mult, unit, post = 1.0, "", ""
    for _ in range(3):
        m = _TAIL.match(text, at)
        if m is None:
            break
        raw, word = m.group("word"), m.group("word").lower()
        glued = not m.group("space")
        after = m.end()
        if after < len(text) and _ATTACHED_LETTER.match(text, after) and raw not in "%×":
            break  # the word goes on: "5 mins" is taken whole, "4oz" too
        if mult == 1.0 and not unit and not post and word in MULTIPLIERS and (
                word not in ("m", "b") or money or raw in ("M", "B")) and (
                len(word) > 2 or glued or money):
            mult, at = MULTIPLIERS[word], after
        elif (not unit and not post and word in UNITS) or word in ("per", "degree", "degrees",
                                                                  "°"):
            found = _unit_words(text, m)
            if found is None:
                break
            unit, at = found
        elif not post and (word in CURRENCY_WORDS or word in CENTS or raw in "€£$¥₹"):
            post, at = raw, after
        else:
            break
    if at < len(text) and _ATTACHED_LETTER.match(text, at) and text[at - 1].isdigit():
        return None
    return at, mult, unit, post


_TWO_WORD_UNIT = re.compile(r"(?P<first>per|degrees?|°)\s*(?P<second>cent|celsius|"
                            r"fahrenheit|c|f)\b", re.IGNORECASE)


def _unit_words(text: str, m: re.Match[str]) -> tuple[str, int] | None:
    word = m.group("word").lower().replace(" ", "")
    two = _TWO_WORD_UNIT.match(text, m.start("word"))
    if two is not None:
        second = two.group("second").lower()
        return ("%" if second == "cent" else "°" + second[0]), two.end()
    if word in ("per",):
        return None
    if word in ("degree", "degrees", "°"):
        return "deg", m.end()
    return word, m.end()


def _currency(pre: str | None, post: str | None) -> str:
    for marker in (pre, post):
        if marker:
            word = marker.strip().lower()
            code = CURRENCY_SYMBOLS.get(word) or CURRENCY_WORDS.get(word)
            if code:
                return "cny" if code == "rmb" else code
    return ""


def _unit(word: str, value: float) -> tuple[str, float]:
    canonical, factor = UNITS.get(word, (word, 1.0))
    return canonical, value * factor


def _quantity(surface: str, start: int, end: int, value: float, unit: str) -> Quantity:
    rounded = round(value, 9)
    text = f"{rounded:.9g}" if abs(rounded) < 1e15 else repr(rounded)
    return Quantity("number", f"{unit}|{text}", surface, start, end, value=rounded,
                    unit=unit)


def _word_value(words: str) -> float | None:
    total, current, seen = 0.0, 0.0, False
    for word in re.split(r"[\s-]+", words.lower()):
        if word == "and":
            continue
        if word in NUMBER_WORDS:
            current += NUMBER_WORDS[word] if word != "dozen" else 0
            if word == "dozen":
                current = (current or 1) * 12
            seen = True
        elif word == "hundred":
            current = (current or 1) * 100
            seen = True
        elif word in SCALE_WORDS:
            total += (current or 1) * SCALE_WORDS[word]
            current, seen = 0.0, True
    return total + current if seen else None


def _word_number(text: str, start: int) -> Quantity | None:
    begin = start
    for article in ("a ", "an "):
        if text[max(0, start - len(article)):start].lower() == article:
            begin = start - len(article)
    m = _WORD_NUMBER.match(text, start)
    if m is None:
        return None
    words = m.group("words").lower()
    if words == "one" and (_NOT_COUNTING_ONE.search(text, max(0, start - 10), start)
                           or _ONE_FOLLOWERS.match(text, m.end())):
        return None
    if words in SCALE_WORDS and begin == start:
        return None  # "thousands of", "hundred" alone: not a count
    value = _word_value(words)
    if value is None:
        return None
    tail = _tail(text, m.end(), money=False)
    end, mult, unit_word, post = tail if tail is not None else (m.end(), 1.0, "", "")
    unit = _currency(None, post or None)
    value *= mult
    if unit_word and not unit:
        unit, value = _unit(unit_word, value)
    return _quantity(text[begin:end].strip(), begin, end, value, unit)


def _half(text: str, start: int) -> Quantity | None:
    m = _HALF.match(text, start)
    if m is None:
        return None
    tail = _tail(text, m.end() - 1, money=False)
    if tail is None or not tail[2]:
        return None
    unit, value = _unit(tail[2], 0.5)
    return _quantity(text[start:tail[0]].strip(), start, tail[0], value, unit)


_Builder = Callable[[re.Match[str]], Quantity | None]
# Each form with the characters that can follow its first digit run.
_DIGIT_FORMS: tuple[tuple[re.Pattern[str], _Builder, str], ...] = (
    (_ISO_DATE, _iso, "-"), (_DOTTED_DATE, _dotted, "."), (_SLASH_DATE, _slashed, "/"),
    (_TIME, _time, ":hapu"))
