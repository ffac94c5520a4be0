"""The judge's rubric (`policies/judge.json`): the system prompt, the prompt template, the
definition of each class, and the bounds of one judge call.

Layer: pure core (the file is read by `proxy.config.load.read_json_file`, the one place
configuration files are read; errors name the file and the dotted key).

The template names its inputs as `{question}`, `{reference}` (legacy's answer),
`{candidate}` (the orchestrator's) and `{classes}` (the class definitions, one line
each, in a fixed order); each must appear, and any other `{word}` is refused so that a
misspelt placeholder fails at load rather than sending a literal `{refrence}`. Inputs
are substituted in one pass, so an answer that contains `{candidate}` stays text.

Answers longer than `max_answer_chars` are not judged at all (a cut answer would look
like a `subset`); a longer question is cut with a marker. `json_mode` asks the model
for a JSON object (OpenAI `response_format`, an instruction for Anthropic); the reply
is read by `proxy.judge.verdict.read_verdict` either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from proxy.config.base import Section
from proxy.config.load import read_json_file, validated
from proxy.judge.verdict import VERDICTS, Verdict

PLACEHOLDERS = ("question", "reference", "candidate", "classes")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
CUT_MARK = " [...]"


class Rubric(Section):
    description: str = ""
    schema_version: int = Field(default=1, alias="schema", ge=1, le=1)
    system: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    classes: dict[Verdict, str]
    json_mode: bool = True
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_output_tokens: int = Field(default=300, ge=16, le=4096)
    max_answer_chars: int = Field(default=6000, ge=100, le=100_000)
    max_question_chars: int = Field(default=4000, ge=100, le=100_000)

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        used = set(_PLACEHOLDER.findall(value))
        unknown = sorted(used - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}: the template may use "
                             + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS))
        missing = [name for name in PLACEHOLDERS if name not in used]
        if missing:
            raise ValueError(f"the template must contain {{{missing[0]}}}")
        return value

    @field_validator("classes")
    @classmethod
    def _every_class(cls, value: dict[Verdict, str]) -> dict[Verdict, str]:
        missing = [verdict for verdict in VERDICTS if verdict not in value]
        if missing:
            raise ValueError(f"needs a definition of every class; missing {missing[0]!r} "
                             f"(classes: {', '.join(VERDICTS)})")
        empty = [verdict for verdict in VERDICTS if not value[verdict].strip()]
        if empty:
            raise ValueError(f"the definition of {empty[0]!r} is empty")
        return value

    def fits(self, reference: str, candidate: str) -> bool:
        """Whether both answers are short enough to be judged whole."""
        return max(len(reference), len(candidate)) <= self.max_answer_chars

    def render(self, question: str, reference: str, candidate: str) -> tuple[str, str]:
        """(system prompt, user message) for one judgement."""
        if len(question) > self.max_question_chars:
            question = question[:self.max_question_chars] + CUT_MARK
        values = {"question": question or "(not available)", "reference": reference,
                  "candidate": candidate, "classes": self.class_lines()}
        user = _PLACEHOLDER.sub(lambda match: values[match.group(1)], self.prompt)
        return self.system, user

    def class_lines(self) -> str:
        return "\n".join(f"- {verdict}: {self.classes[verdict].strip()}"
                         for verdict in VERDICTS)


def parse_rubric(data: Mapping[str, Any], source: str = "<judge policy>") -> Rubric:
    return validated(Rubric, data, source)


def load_rubric(path: Path) -> Rubric:
    return parse_rubric(read_json_file(path), str(path))
