"""Task classification: the documented rules, in order, and the hint override."""

from __future__ import annotations

import pytest

from proxy.orchestrator.classification import ClassifyLimits, TaskType, classify, model_count
from proxy.orchestrator.conversation import parse_anthropic, parse_openai_chat

USER = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize(("body", "hint", "expected", "reason"), [
    ({"messages": USER}, None, TaskType.SIMPLE_QUERY, "default"),
    ({"messages": USER}, "data_validation", TaskType.DATA_VALIDATION, "hint"),
    ({"messages": USER}, "Complex", TaskType.COMPLEX_REASONING, "hint"),
    ({"messages": USER}, "reasoning", TaskType.COMPLEX_REASONING, "hint"),
    ({"messages": USER}, "nonsense", TaskType.SIMPLE_QUERY, "unknown hint 'nonsense' ignored"),
    ({"messages": USER, "response_format": {"type": "json_object"}}, None,
     TaskType.DATA_VALIDATION, "structured output"),
    ({"messages": USER, "response_format": {"type": "json_schema",
                                            "json_schema": {"name": "x", "schema": {}}}},
     None, TaskType.DATA_VALIDATION, "structured output"),
    ({"messages": USER, "response_format": {"type": "text"}}, None, TaskType.SIMPLE_QUERY,
     "default"),
    ({"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": "required"}, None, TaskType.DATA_VALIDATION, "forced tool call"),
    ({"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]}, None,
     TaskType.COMPLEX_REASONING, "tools offered"),
    ({"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": "none"}, None, TaskType.SIMPLE_QUERY, "default"),
    ({"messages": USER, "reasoning_effort": "high"}, None, TaskType.COMPLEX_REASONING,
     "reasoning requested"),
    ({"messages": [{"role": "user", "content": "Explain why the sky is blue, step by step"}]},
     None, TaskType.COMPLEX_REASONING, "reasoning cue"),
    ({"messages": [{"role": "user", "content": "x" * 5000}]}, None,
     TaskType.COMPLEX_REASONING, "long input"),
    ({"messages": USER * 9}, None, TaskType.COMPLEX_REASONING, "long conversation"),
    # The hint wins over everything else.
    ({"messages": USER, "response_format": {"type": "json_object"}}, "simple",
     TaskType.SIMPLE_QUERY, "hint"),
])
def test_openai_requests_are_classified(body: dict, hint: str | None, expected: TaskType,
                                        reason: str) -> None:
    result = classify(parse_openai_chat(body), hint, ClassifyLimits(4000, 8))
    assert result.task_type is expected
    assert result.reason.startswith(reason)


@pytest.mark.parametrize(("body", "expected"), [
    ({"max_tokens": 10, "messages": USER}, TaskType.SIMPLE_QUERY),
    ({"max_tokens": 10, "messages": USER, "thinking": {"type": "enabled",
                                                      "budget_tokens": 1024}},
     TaskType.COMPLEX_REASONING),
    ({"max_tokens": 10, "messages": USER, "tools": [{"name": "f", "input_schema": {}}],
      "tool_choice": {"type": "tool", "name": "f"}}, TaskType.DATA_VALIDATION),
    ({"max_tokens": 10, "messages": USER,
      "output_format": {"type": "json_schema", "schema": {"type": "object"}}},
     TaskType.DATA_VALIDATION),
])
def test_anthropic_requests_are_classified(body: dict, expected: TaskType) -> None:
    assert classify(parse_anthropic(body)).task_type is expected


def test_task_type_parse_accepts_values_names_and_aliases() -> None:
    assert TaskType.parse("DATA_VALIDATION") is TaskType.DATA_VALIDATION
    assert TaskType.parse("data-validation") is TaskType.DATA_VALIDATION
    assert TaskType.parse(TaskType.SIMPLE_QUERY) is TaskType.SIMPLE_QUERY
    assert TaskType.parse("bogus") is None
    assert TaskType.DATA_VALIDATION == "data_validation"


def test_model_count_follows_the_guides_settings() -> None:
    assert [model_count(t, 1, 2, 3) for t in TaskType] == [1, 2, 3]
