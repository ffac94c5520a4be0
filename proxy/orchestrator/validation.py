"""Validation rules from `policies/validation.json`, and checking an answer against them.

Layer: pure core (jsonschema is a pure computation library). A policy is a list of
rules; each rule says which answers it applies to (task types, the legacy API's data
types, the kind of output) and what it checks:

    valid_json        the answer parses as JSON (tool-call arguments too)
    request_schema    the answer matches the schema the client itself sent
                      (`response_format.json_schema`, or each tool's `parameters`)
    json_schema       the answer matches this JSON Schema (any draft jsonschema knows)
    required_fields   these dotted paths exist (`items[].price`: in every list element)
    min_length        text length bounds, in characters
    max_length
    patterns          regular expressions the text must match (re.search)
    forbidden_patterns regular expressions the text must not match
    numeric_ranges    {"path": {"min": x, "max": y}}: numbers at that path within bounds

An answer failing any applicable rule is excluded from the merge and recorded (the
model's record counts it as invalid). The policy file is checked when it is loaded
(schemas, patterns, keys), so a bad edit is refused with the file and key named.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
import orjson
from pydantic import Field, ValidationError, field_validator

from proxy.config.base import Section
from proxy.orchestrator.content import Content, parse_json_text

OutputKind = Literal["any", "text", "json", "tool_calls"]


class AppliesTo(Section):
    task_types: tuple[str, ...] = ()
    data_types: tuple[str, ...] = ()
    output: OutputKind = "any"


class Range(Section):
    min: float | None = None
    max: float | None = None


class Checks(Section):
    valid_json: bool = False
    request_schema: bool = False
    json_schema: dict[str, Any] | None = None
    required_fields: tuple[str, ...] = ()
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    patterns: tuple[str, ...] = ()
    forbidden_patterns: tuple[str, ...] = ()
    numeric_ranges: dict[str, Range] = Field(default_factory=dict)

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return value

    @field_validator("patterns", "forbidden_patterns")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return value


class Rule(Section):
    name: str
    description: str = ""
    applies_to: AppliesTo = AppliesTo()
    checks: Checks = Checks()


class ValidationPolicy(Section):
    version: int = 1
    description: str = ""
    rules: tuple[Rule, ...] = ()


DEFAULT_POLICY = ValidationPolicy(rules=(
    Rule(name="non-empty", checks=Checks(min_length=1)),
    Rule(name="json-when-asked", applies_to=AppliesTo(output="json"),
         checks=Checks(valid_json=True, request_schema=True)),
    Rule(name="tool-arguments", applies_to=AppliesTo(output="tool_calls"),
         checks=Checks(valid_json=True, request_schema=True)),
))


def wants_json(policy: ValidationPolicy, data_type: str | None) -> bool:
    """Whether a rule for this data type expects JSON (the Python API then asks the
    models for JSON)."""
    if data_type is None:
        return False
    for rule in policy.rules:
        if data_type in rule.applies_to.data_types:
            checks = rule.checks
            if checks.valid_json or checks.json_schema is not None or checks.required_fields:
                return True
    return False


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file and the key."""


def load_policy(path: Path) -> ValidationPolicy:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise PolicyError(f"{path}: invalid JSON: {exc}") from exc
    try:
        return ValidationPolicy.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            ".".join(str(p) for p in error["loc"]) + ": "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors(include_url=False))
        raise PolicyError(f"{path}: {details}") from None


@dataclass(frozen=True)
class Subject:
    """What an answer is checked against: the request's task type, data type and the
    schemas the client sent."""

    task_type: str
    data_type: str | None = None
    request_schema: Mapping[str, Any] | None = None
    tool_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


def validate(content: Content, subject: Subject, policy: ValidationPolicy) -> Verdict:
    failures: list[str] = []
    for rule in policy.rules:
        if _applies(rule.applies_to, content, subject):
            failures.extend(f"{rule.name}: {problem}"
                            for problem in _check(rule.checks, content, subject))
    return Verdict(tuple(failures))


def _applies(scope: AppliesTo, content: Content, subject: Subject) -> bool:
    if scope.task_types and subject.task_type not in scope.task_types:
        return False
    if scope.data_types and subject.data_type not in scope.data_types:
        return False
    kind = "tool_calls" if content.tool_calls else "json" if content.structured else "text"
    return scope.output in ("any", kind)


def _check(checks: Checks, content: Content, subject: Subject) -> Iterator[str]:
    if content.tool_calls:
        yield from _check_tools(checks, content, subject)
        return
    yield from _check_text(checks, content.text)
    needs_json = (checks.valid_json or checks.json_schema is not None or checks.required_fields
                  or checks.numeric_ranges or (checks.request_schema and subject.request_schema))
    if not needs_json:
        return
    data = content.data if content.structured else parse_json_text(content.text)
    if data is None:
        yield "not valid JSON"
        return
    yield from _check_value(checks, data, subject.request_schema if
                            checks.request_schema else None)


def _check_tools(checks: Checks, content: Content, subject: Subject) -> Iterator[str]:
    for call in content.tool_calls:
        if subject.tool_schemas and call.name not in subject.tool_schemas:
            yield f"call to unknown tool {call.name!r}"
            continue
        try:
            arguments = orjson.loads(call.arguments or "{}")
        except orjson.JSONDecodeError:
            if checks.valid_json or checks.request_schema:
                yield f"tool {call.name!r}: arguments are not valid JSON"
            continue
        schema = subject.tool_schemas.get(call.name) if checks.request_schema else None
        yield from (f"tool {call.name!r}: {problem}"
                    for problem in _check_value(checks, arguments, schema))


def _check_text(checks: Checks, text: str) -> Iterator[str]:
    if checks.min_length is not None and len(text) < checks.min_length:
        yield f"shorter than {checks.min_length} characters"
    if checks.max_length is not None and len(text) > checks.max_length:
        yield f"longer than {checks.max_length} characters"
    for pattern in checks.patterns:
        if not re.search(pattern, text):
            yield f"does not match {pattern!r}"
    for pattern in checks.forbidden_patterns:
        if re.search(pattern, text):
            yield f"matches forbidden {pattern!r}"


def _check_value(checks: Checks, value: Any,
                 request_schema: Mapping[str, Any] | None) -> Iterator[str]:
    for schema in (request_schema, checks.json_schema):
        if schema:
            yield from _schema_errors(value, schema)
    for path in checks.required_fields:
        if any(found is _MISSING for found in _resolve(value, path)):
            yield f"missing required field {path!r}"
    for path, bounds in checks.numeric_ranges.items():
        for found in _resolve(value, path):
            yield from _range_problem(path, found, bounds)


def _schema_errors(value: Any, schema: Mapping[str, Any]) -> Iterator[str]:
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    except jsonschema.SchemaError as exc:
        yield f"the schema is invalid: {exc.message}"
        return
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        yield f"schema: {where}: {error.message}"


def _range_problem(path: str, found: Any, bounds: Range) -> Iterator[str]:
    if found is _MISSING:
        return
    if isinstance(found, bool) or not isinstance(found, int | float):
        yield f"{path}: {found!r} is not a number"
    elif bounds.min is not None and found < bounds.min:
        yield f"{path}: {found} below minimum {bounds.min}"
    elif bounds.max is not None and found > bounds.max:
        yield f"{path}: {found} above maximum {bounds.max}"


_MISSING = object()


def _resolve(value: Any, path: str) -> Iterator[Any]:
    """Values at a dotted path; `name[]` fans out over a list. Yields `_MISSING` where
    a step is absent."""
    yield from _walk(value, [part for part in path.split(".") if part])


def _walk(value: Any, parts: Sequence[str]) -> Iterator[Any]:
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    each = head.endswith("[]")
    name = head[:-2] if each else head
    if name:
        if not isinstance(value, Mapping) or name not in value:
            yield _MISSING
            return
        value = value[name]
    if not each:
        yield from _walk(value, rest)
        return
    if not isinstance(value, list):
        yield _MISSING
        return
    for item in value:
        yield from _walk(item, rest)
