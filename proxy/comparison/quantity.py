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

import re
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


@dataclass(frozen=True, slots=True)
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


_UNIT_WORDS = _alternation([*UNITS, "per cent", "degrees celsius", "degrees fahrenheit",
                            "degrees c", "degrees f", "° c", "° f"])
_CURRENCY_AFTER = _alternation([*CURRENCY_WORDS, *CENTS, "€", "£", "$", "¥", "₹"])
_CURRENCY_BEFORE = (_alternation([s for s in CURRENCY_SYMBOLS if not s.isalpha()])
                    + r"|\b(?:" + _alternation(
                        [w for w in (*CURRENCY_WORDS, "chf") if len(w) == 3]) + r")\b")
_MONTH = _alternation(list(MONTHS))
_NUMBER_WORD = _alternation([*NUMBER_WORDS, *SCALE_WORDS])

_AMPM = r"(?:a\.m\.|p\.m\.|am|pm)"
_NUMBER = re.compile(
    rf"(?P<pre>(?:{_CURRENCY_BEFORE})\s?)?"
    r"(?<![A-Za-z0-9_.])(?<![A-Za-z]-)"
    r"(?P<sign>(?<![\w.,])[-−+])?"
    r"(?P<num>\d+(?:\.\d+){2,}|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+,\d{1,2}(?![\d,])|\d+(?:\.\d+)?"
    r"|\.\d+)"
    r"(?P<ord>st|nd|rd|th)?"
    r"(?:\s?(?P<mult>thousand|million|billion|trillion|bn|mn|tn|k|m|b)(?![A-Za-z0-9]))?"
    rf"(?:\s?-?(?P<unit>{_UNIT_WORDS})(?![A-Za-z0-9]))?"
    rf"(?:\s?(?P<post>{_CURRENCY_AFTER})(?![A-Za-z0-9]))?"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE)
_WORD_NUMBER = re.compile(
    rf"\b(?P<a>an?\s+(?=(?:hundred|thousand|million|billion|dozen)\b))?"
    rf"(?P<words>(?:{_NUMBER_WORD})(?:(?:\s+and\s+|[\s-]+)(?:{_NUMBER_WORD}))*)\b"
    rf"(?:\s?-?(?P<unit>{_UNIT_WORDS})(?![A-Za-z0-9]))?"
    rf"(?:\s(?P<post>{_CURRENCY_AFTER})(?![A-Za-z0-9]))?",
    re.IGNORECASE)
_HALF = re.compile(rf"\bhalf\s+(?:an?\s+)?(?P<unit>{_UNIT_WORDS})(?![A-Za-z0-9])",
                   re.IGNORECASE)
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])")
_DOTTED_DATE = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\d.])")
_SLASH_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{2,4})(?![\d/])")
_NAMED_DATE = re.compile(
    rf"(?:\b(?P<d1>\d{{1,2}})(?:st|nd|rd|th|er)?\.?\s+(?:of\s+|de\s+)?)?"
    rf"\b(?P<month>{_MONTH})\b\.?"
    rf"(?:\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?(?![\d:]))?"
    rf"(?:,?\s+(?:de\s+)?(?P<year>\d{{4}})(?!\d))?",
    re.IGNORECASE)
_TIME = re.compile(
    rf"(?<![\d:.])(?P<h>\d{{1,2}})(?:[:h](?P<m>\d{{2}})(?::(?P<s>\d{{2}}))?)?"
    rf"(?:\s?(?P<ampm>{_AMPM})(?![A-Za-z])|\s?(?P<uhr>uhr)\b)?(?![\d:])",
    re.IGNORECASE)
_DAY_WORDS = re.compile(
    r"\b(?:" + _alternation([*WEEKDAYS, *RELATIVE_DAYS, "noon", "midnight"]) + r")\b",
    re.IGNORECASE)
_NOT_COUNTING_ONE = re.compile(r"(?:the|this|that|which|each|any|every|no|only|another|"
                               r"some)\s+$", re.IGNORECASE)
_ONE_FOLLOWERS = re.compile(r"\s*(?:of|another|'s|or more|by one)\b", re.IGNORECASE)


def quantities(text: str) -> list[Quantity]:
    """Every date, time and number in `text`, left to right, spans not overlapping."""
    found: list[Quantity] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def keep(item: Quantity | None) -> None:
        if item is not None and free(item.start, item.end):
            found.append(item)
            taken.append((item.start, item.end))

    for finder in (_dates, _times, _day_words, _numbers, _word_numbers, _halves):
        for item in finder(text):
            keep(item)
    found.sort(key=lambda q: q.start)
    return found


def _when(key: str, match: re.Match[str]) -> Quantity:
    return Quantity("when", key, match.group(0).strip(), match.start(), match.end())


def _date_key(year: str | None, month: int, day: str | None) -> str:
    parts = [year or "-", f"{month:02d}"]
    if day:
        parts.append(f"{int(day):02d}")
    return "-".join(parts)


def _dates(text: str) -> list[Quantity]:
    out = []
    for m in _ISO_DATE.finditer(text):
        if 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31:
            out.append(_when(_date_key(m.group(1), int(m.group(2)), m.group(3)), m))
    for m in _DOTTED_DATE.finditer(text):
        if 1 <= int(m.group(2)) <= 12:
            out.append(_when(_date_key(m.group(3), int(m.group(2)), m.group(1)), m))
    for m in _SLASH_DATE.finditer(text):
        key = "/".join(str(int(part)) for part in m.groups())
        out.append(_when(key, m))
    for m in _NAMED_DATE.finditer(text):
        month_word = m.group("month")
        day, year = m.group("d1") or m.group("d2"), m.group("year")
        if not (day or year) and not _standalone_month(month_word):
            continue
        if day and not 1 <= int(day) <= 31:
            continue
        out.append(_when(_date_key(year, MONTHS[month_word.lower()], day), m))
    return out


def _standalone_month(word: str) -> bool:
    """A month name alone is a date only when written as a name: capitalised, in full,
    and not one that is also a common word."""
    return (word[:1].isupper() and len(word) > 3
            and word.lower() not in ("may", "march", "mars", "mai"))


def _times(text: str) -> list[Quantity]:
    out = []
    for m in _TIME.finditer(text):
        if m.group("m") is None and m.group("ampm") is None and m.group("uhr") is None:
            continue
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
        ampm = (m.group("ampm") or "").lower().replace(".", "")
        if ampm and not 1 <= hour <= 12:
            continue
        if ampm == "pm" and hour != 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        if hour > 24 or minute > 59:
            continue
        seconds = int(m.group("s") or 0)
        key = f"{hour:02d}:{minute:02d}" + (f":{seconds:02d}" if seconds else "")
        out.append(_when(key, m))
    return out


def _day_words(text: str) -> list[Quantity]:
    out = []
    for m in _DAY_WORDS.finditer(text):
        word = m.group(0).lower()
        if word in WEEKDAYS:
            out.append(_when("weekday:" + WEEKDAYS[word], m))
        elif word in RELATIVE_DAYS:
            out.append(_when("day:" + RELATIVE_DAYS[word], m))
        else:
            out.append(_when("12:00" if word == "noon" else "00:00", m))
    return out


def _parse_digits(raw: str) -> tuple[float | None, str]:
    """(value, version string) of the digits as written."""
    if raw.count(".") >= 2:
        return None, raw
    if re.fullmatch(r"\d+,\d{1,2}", raw):
        raw = raw.replace(",", ".")
    return float(raw.replace(",", "")), ""


def _numbers(text: str) -> list[Quantity]:
    out = []
    for m in _NUMBER.finditer(text):
        value, version = _parse_digits(m.group("num"))
        if value is None:
            out.append(Quantity("number", "v" + version, m.group(0).strip(), m.start(),
                                m.end(), unit="version"))
            continue
        if m.group("sign") in ("-", "−"):
            value = -value
        currency = _currency(m.group("pre"), m.group("post"))
        mult = (m.group("mult") or "").lower()
        unit_word = (m.group("unit") or "").lower()
        if mult in ("m", "b") and not currency:
            # 5m is five metres and 5 B five bytes, unless money: $5m is five million.
            unit_word, mult = unit_word or mult, ""
        if m.group("mult") == "M" or m.group("mult") == "B":
            unit_word, mult = (m.group("unit") or "").lower(), m.group("mult").lower()
        value *= MULTIPLIERS.get(mult, 1.0)
        unit = "#" if m.group("ord") else currency
        if m.group("post") and m.group("post").lower() in CENTS:
            value, unit = value / 100, "usd"
        if unit_word and not currency:
            unit, value = _unit(unit_word, value)
        out.append(_number(m, value, unit))
    return out


def _currency(pre: str | None, post: str | None) -> str:
    for marker in (pre, post):
        if marker:
            word = marker.strip().lower()
            code = CURRENCY_SYMBOLS.get(word) or CURRENCY_WORDS.get(word)
            if code:
                return "cny" if code == "rmb" else code
    return ""


def _unit(word: str, value: float) -> tuple[str, float]:
    word = " ".join(word.replace("°", "° ").split())
    if word in ("per cent",):
        word = "%"
    elif word.startswith("degrees ") or word.startswith("° "):
        word = "°" + word.split()[-1][0]
    canonical, factor = UNITS.get(word, UNITS.get(word.replace(" ", ""), (word, 1.0)))
    return canonical, value * factor


def _number(m: re.Match[str], value: float, unit: str) -> Quantity:
    rounded = round(value, 9)
    text = f"{rounded:.9g}" if abs(rounded) < 1e15 else repr(rounded)
    return Quantity("number", f"{unit}|{text}", m.group(0).strip(), m.start(), m.end(),
                    value=rounded, unit=unit)


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


def _word_numbers(text: str) -> list[Quantity]:
    out = []
    for m in _WORD_NUMBER.finditer(text):
        words = m.group("words")
        if words.lower() == "one" and (_NOT_COUNTING_ONE.search(text, 0, m.start())
                                       or _ONE_FOLLOWERS.match(text, m.end("words"))):
            continue
        if words.lower() in SCALE_WORDS and not m.group("a"):
            continue  # "thousands of", "hundred" alone: not a count
        value = _word_value(words)
        if value is None:
            continue
        unit = _currency(None, m.group("post"))
        if m.group("unit") and not unit:
            unit, value = _unit(m.group("unit").lower(), value)
        out.append(_number(m, value, unit))
    return out


def _halves(text: str) -> list[Quantity]:
    out = []
    for m in _HALF.finditer(text):
        unit, value = _unit(m.group("unit").lower(), 0.5)
        out.append(_number(m, value, unit))
    return out
