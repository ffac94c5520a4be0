"""Validation rules: each check, rule scoping, policy loading (and the repo's default
policy file loads)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from proxy.orchestrator.content import Content, ToolCall, text_content
from proxy.orchestrator.validation import (
    DEFAULT_POLICY,
    PolicyError,
    Subject,
    ValidationPolicy,
    load_policy,
    validate,
    wants_json,
)

REPO = Path(__file__).resolve().parents[2]
SUBJECT = Subject(task_type="data_validation")


def policy(*rules: dict) -> ValidationPolicy:
    return ValidationPolicy.model_validate({"rules": list(rules)})


def failures(content: Content, *rules: dict, subject: Subject = SUBJECT) -> tuple[str, ...]:
    return validate(content, subject, policy(*rules)).failures


def test_repo_policy_file_loads_and_wants_json_for_gpu() -> None:
    loaded = load_policy(REPO / "policies" / "validation.json")
    assert {rule.name for rule in loaded.rules} >= {"non-empty", "json-when-asked"}
    assert wants_json(loaded, "gpu") and not wants_json(loaded, None)


def test_gpu_example_rule() -> None:
    loaded = load_policy(REPO / "policies" / "validation.json")
    subject = Subject(task_type="data_validation", data_type="gpu")
    good = text_content('[{"name": "H100", "price_usd": 25000}]', structured=True)
    assert validate(good, subject, loaded).passed
    bad = text_content('[{"name": "H100", "price_usd": -5}, {"name": "A100"}]', True)
    problems = validate(bad, subject, loaded).failures
    assert any("below minimum" in p for p in problems)
    assert any("[].price_usd" in p for p in problems)


@pytest.mark.parametrize(("checks", "text", "ok"), [
    ({"min_length": 3}, "ab", False),
    ({"min_length": 3}, "abc", True),
    ({"max_length": 3}, "abcd", False),
    ({"patterns": [r"^\d+$"]}, "123", True),
    ({"patterns": [r"^\d+$"]}, "12a", False),
    ({"forbidden_patterns": ["(?i)lorem ipsum"]}, "Lorem Ipsum dolor", False),
    ({"valid_json": True}, '{"a": 1}', True),
    ({"valid_json": True}, "{a: 1}", False),
])
def test_text_checks(checks: dict, text: str, ok: bool) -> None:
    assert (not failures(Content(text=text), {"name": "r", "checks": checks})) is ok


def test_json_schema_required_fields_and_ranges() -> None:
    rule = {"name": "prices", "checks": {
        "json_schema": {"type": "object", "properties": {"items": {"type": "array"}}},
        "required_fields": ["currency", "items[].price"],
        "numeric_ranges": {"items[].price": {"min": 0, "max": 100}}}}
    good = text_content('{"currency": "USD", "items": [{"price": 5}, {"price": 99.5}]}', True)
    assert failures(good, rule) == ()
    bad = text_content('{"items": [{"price": 500}, {"cost": 1}, {"price": "x"}]}', True)
    problems = failures(bad, rule)
    assert "prices: missing required field 'currency'" in problems
    assert "prices: missing required field 'items[].price'" in problems
    assert any("above maximum" in p for p in problems)
    assert any("is not a number" in p for p in problems)
    not_object = text_content('{"items": 3}', True)
    assert any(p.startswith("prices: schema: items") for p in failures(not_object, rule))


def test_the_clients_own_schema_is_checked() -> None:
    schema = {"type": "object", "required": ["city"],
              "properties": {"city": {"type": "string"}}}
    subject = Subject(task_type="data_validation", request_schema=schema)
    assert validate(text_content('{"city": "Rome"}', True), subject, DEFAULT_POLICY).passed
    assert not validate(text_content('{"town": "Rome"}', True), subject, DEFAULT_POLICY).passed
    assert not validate(text_content("Rome", True), subject, DEFAULT_POLICY).passed


def test_tool_call_arguments_are_checked_against_the_tool() -> None:
    subject = Subject(task_type="data_validation", tool_schemas={
        "weather": {"type": "object", "required": ["city"]}})
    good = Content(tool_calls=(ToolCall("weather", '{"city": "Rome"}'),))
    missing = Content(tool_calls=(ToolCall("weather", "{}"),))
    garbage = Content(tool_calls=(ToolCall("weather", "{nope"),))
    unknown = Content(tool_calls=(ToolCall("launch_missiles", "{}"),))
    assert validate(good, subject, DEFAULT_POLICY).passed
    for content in (missing, garbage, unknown):
        assert not validate(content, subject, DEFAULT_POLICY).passed


def test_rules_apply_only_within_their_scope() -> None:
    rule = {"name": "dv-only", "applies_to": {"task_types": ["data_validation"],
                                              "data_types": ["gpu"], "output": "text"},
            "checks": {"min_length": 100}}
    short = Content(text="short")
    assert failures(short, rule, subject=Subject("data_validation", "gpu"))
    assert not failures(short, rule, subject=Subject("simple_query", "gpu"))
    assert not failures(short, rule, subject=Subject("data_validation", "cpu"))
    assert not failures(text_content("{}", True), rule, subject=Subject("data_validation", "gpu"))


def test_the_default_policy_refuses_an_empty_answer() -> None:
    assert not validate(Content(text=""), SUBJECT, DEFAULT_POLICY).passed


@pytest.mark.parametrize(("document", "message"), [
    (b"{not json", "invalid JSON"),
    (orjson.dumps({"rules": [{"name": "r", "checks": {"patterns": ["("]}}]}),
     "rules.0.checks.patterns: invalid regular expression"),
    (orjson.dumps({"rules": [{"name": "r", "checks": {"json_schema": {"type": "nope"}}}]}),
     "invalid JSON Schema"),
    (orjson.dumps({"rules": [{"name": "r", "chekcs": {}}]}), "rules.0.chekcs"),
])
def test_a_bad_policy_file_is_refused_naming_the_key(tmp_path: Path, document: bytes,
                                                      message: str) -> None:
    path = tmp_path / "validation.json"
    path.write_bytes(document)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(path) in str(info.value) and message in str(info.value)
