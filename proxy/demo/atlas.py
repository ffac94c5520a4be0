"""What the demo's fake LLMs know and how each of them says it: a small fact table
(countries, their capitals and currencies) and three kinds of question about it.

Layer: pure core (no I/O; randomness comes from the caller's `random.Random`).

Legacy answers in its own words, like a real model sampled at a non-zero temperature:
mostly the plain sentence, often a reordering or close paraphrase (the comparison calls
those equivalent), now and then a looser wording (minor). That is legacy disagreeing
with itself: the noise floor the orchestrator's divergence is judged against. The
orchestrator's models answer with the plain sentence, so a healthy orchestrator diverges
from legacy no more than legacy does from itself.

The regression the demo injects, `wrong`, is a cross-talk bug: a model answers another
user's question (another country, the other kind of question). Text similarity cannot
tell "Paris" from "Lyon" in an otherwise identical sentence, so the wrong answers are
wrong the way cross-talk is, not by one word.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

Kind = Literal["capital", "currency", "json"]


@dataclass(frozen=True, slots=True)
class Country:
    name: str
    capital: str
    currency: str


COUNTRIES: tuple[Country, ...] = (
    Country("France", "Paris", "euro"),
    Country("Japan", "Tokyo", "yen"),
    Country("Canada", "Ottawa", "Canadian dollar"),
    Country("Australia", "Canberra", "Australian dollar"),
    Country("Brazil", "Brasília", "Brazilian real"),
    Country("Kenya", "Nairobi", "Kenyan shilling"),
    Country("India", "New Delhi", "Indian rupee"),
    Country("Germany", "Berlin", "euro"),
    Country("Mexico", "Mexico City", "Mexican peso"),
    Country("Egypt", "Cairo", "Egyptian pound"),
    Country("Norway", "Oslo", "Norwegian krone"),
    Country("Argentina", "Buenos Aires", "Argentine peso"),
    Country("South Korea", "Seoul", "South Korean won"),
    Country("Switzerland", "Bern", "Swiss franc"),
    Country("Vietnam", "Hanoi", "Vietnamese dong"),
    Country("Peru", "Lima", "Peruvian sol"),
)
_BY_NAME = {country.name.casefold(): country for country in COUNTRIES}

FOLLOW_UP = "And which currency do they use there?"
SYSTEM_PROMPT = "You are a concise assistant for a travel booking site. Answer in one sentence."
FALLBACK_ANSWER = "I can only answer questions about capitals and currencies."

Phrasing = Callable[[Country], str]
# (weight, phrasing): the first is the plain sentence the orchestrator's models use.
CAPITAL_PHRASINGS: tuple[tuple[float, Phrasing], ...] = (
    (0.60, lambda c: f"The capital of {c.name} is {c.capital}."),
    (0.18, lambda c: f"{c.capital} is the capital of {c.name}."),
    (0.15, lambda c: f"The capital city of {c.name} is {c.capital}."),
    (0.07, lambda c: f"{c.name} has {c.capital} as its capital city."),
)
CURRENCY_PHRASINGS: tuple[tuple[float, Phrasing], ...] = (
    (0.62, lambda c: f"The currency of {c.name} is the {c.currency}."),
    (0.31, lambda c: f"The official currency of {c.name} is the {c.currency}."),
    (0.07, lambda c: f"{c.name} uses the {c.currency}."),
)


@dataclass(frozen=True, slots=True)
class Question:
    kind: Kind
    country: Country


def capital_question(country: Country) -> str:
    return f"What is the capital of {country.name}?"


def json_question(country: Country) -> str:
    return (f"Give the country, capital and currency of {country.name} as a JSON object "
            f"with the keys country, capital and currency.")


def understand(messages: Sequence[Mapping[str, Any]]) -> Question | None:
    """The question the last user message asks (a follow-up takes its country from the
    earlier user messages); None for anything the table cannot answer."""
    asked = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    if not asked:
        return None
    last = asked[-1]
    if last.strip() == FOLLOW_UP:
        earlier = next((c for text in reversed(asked[:-1]) if (c := country_in(text))), None)
        return Question("currency", earlier) if earlier else None
    country = country_in(last)
    if country is None:
        return None
    return Question("json" if "json" in last.casefold() else "capital", country)


def country_in(text: str) -> Country | None:
    folded = text.casefold()
    for name, country in _BY_NAME.items():
        if re.search(rf"\b{re.escape(name)}\b", folded):
            return country
    return None


def text_of(content: Any) -> str:
    """A message's text, whether a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content
                        if isinstance(part, dict))
    return ""


def plain_answer(question: Question | None) -> str:
    """The orchestrator's models' answer: always the plain sentence (or exact JSON)."""
    if question is None:
        return FALLBACK_ANSWER
    if question.kind == "json":
        return json_answer(question.country)
    phrasings = CAPITAL_PHRASINGS if question.kind == "capital" else CURRENCY_PHRASINGS
    return phrasings[0][1](question.country)


def legacy_answer(question: Question | None, rng: random.Random) -> str:
    """Legacy's answer, in one of its phrasings (JSON with its keys in any order)."""
    if question is None:
        return FALLBACK_ANSWER
    if question.kind == "json":
        return json_answer(question.country, shuffle=rng)
    phrasings = CAPITAL_PHRASINGS if question.kind == "capital" else CURRENCY_PHRASINGS
    weights = [weight for weight, _ in phrasings]
    _, phrasing = rng.choices(phrasings, weights=weights)[0]
    return phrasing(question.country)


def cross_talk_answer(question: Question | None) -> str:
    """The regression: the plain answer to the other kind of question, about the next
    country in the table (what a model says when it got another user's prompt)."""
    if question is None:
        return FALLBACK_ANSWER
    other = COUNTRIES[(COUNTRIES.index(question.country) + 1) % len(COUNTRIES)]
    swapped: dict[Kind, Kind] = {"capital": "currency", "currency": "capital", "json": "json"}
    return plain_answer(Question(swapped[question.kind], other))


def json_answer(country: Country, shuffle: random.Random | None = None) -> str:
    items = [("country", country.name), ("capital", country.capital),
             ("currency", country.currency)]
    if shuffle is not None:
        shuffle.shuffle(items)
    return orjson.dumps(dict(items)).decode()


def is_right(question: Question, answer: str) -> bool:
    """Whether an answer carries the fact that was asked for (what a user would check)."""
    country = question.country
    if question.kind == "json":
        try:
            data = orjson.loads(answer)
        except orjson.JSONDecodeError:
            return False
        return isinstance(data, dict) and data.get("capital") == country.capital
    expected = country.capital if question.kind == "capital" else country.currency
    return expected.casefold() in answer.casefold() and country.name in answer


def words(text: str) -> Iterable[str]:
    """A streamed answer's pieces: each word with the space before it."""
    for index, word in enumerate(text.split(" ")):
        yield word if index == 0 else " " + word
