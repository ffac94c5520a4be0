"""Task types, and how a request is classified into one.

Layer: pure core. The task type decides how many models answer a request (the guide's
`simple_query_model_count`, `complex_reasoning_model_count`, `validation_model_count`)
and keys every learned record: a model good at quick facts may be poor at structured
extraction.

Classification, first rule that applies wins:

1. **Hint.** The client names the task in the hint header (`orchestrator.task_hint_header`,
   default `x-task-type`), e.g. `x-task-type: data_validation`. Aliases are accepted
   (`simple`, `complex`, `reasoning`, `validation`, `structured`); an unknown value is
   ignored and the reason says so.
2. **Data validation.** The answer has a checkable shape: JSON output was requested
   (`response_format` `json_object`/`json_schema`, Anthropic `output_format`) or a tool
   call is forced (`tool_choice` `required`/named, Anthropic `any`/`tool`). Such answers
   can be compared exactly, so several models cross-check each other.
3. **Complex reasoning.** Reasoning was requested (`reasoning_effort`, Anthropic
   `thinking`); tools are offered (an agent step); the input is long
   (`complex_prompt_chars`) or the conversation has many turns (`complex_message_count`);
   or the last user message asks for reasoning (step by step, explain why, prove, derive,
   analyse, compare, evaluate, plan, trade-offs, ...).
4. **Simple query** otherwise.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from proxy.orchestrator.conversation import Conversation


class TaskType(enum.StrEnum):
    SIMPLE_QUERY = "simple_query"
    COMPLEX_REASONING = "complex_reasoning"
    DATA_VALIDATION = "data_validation"

    @classmethod
    def parse(cls, value: str | TaskType | None) -> TaskType | None:
        """A task type from its value, name or alias; None when unknown."""
        if value is None:
            return None
        if isinstance(value, TaskType):
            return value
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        return _ALIASES.get(key)


_ALIASES: dict[str, TaskType] = {
    **{task.value: task for task in TaskType},
    "simple": TaskType.SIMPLE_QUERY, "query": TaskType.SIMPLE_QUERY,
    "complex": TaskType.COMPLEX_REASONING, "reasoning": TaskType.COMPLEX_REASONING,
    "validation": TaskType.DATA_VALIDATION, "structured": TaskType.DATA_VALIDATION,
}

_REASONING_CUES = re.compile(
    r"\b(step[- ]by[- ]step|explain why|explain how|why does|why do|prove|proof|derive|"
    r"analy[sz]e|analysis|compare|contrast|evaluate|assess|plan|trade[- ]?offs?|"
    r"pros and cons|reason(?:ing)? about|justify|critique)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Classification:
    task_type: TaskType
    reason: str


@dataclass(frozen=True)
class ClassifyLimits:
    complex_prompt_chars: int = 4000
    complex_message_count: int = 8


def classify(conversation: Conversation, hint: str | None = None,
             limits: ClassifyLimits = ClassifyLimits()) -> Classification:
    hinted = TaskType.parse(hint) if hint else None
    if hinted is not None:
        return Classification(hinted, "hint")
    prefix = f"unknown hint {hint!r} ignored; " if hint else ""
    if conversation.output.structured:
        return Classification(TaskType.DATA_VALIDATION, prefix + "structured output")
    if conversation.tool_choice.mode in ("required", "named"):
        return Classification(TaskType.DATA_VALIDATION, prefix + "forced tool call")
    reason = _complexity(conversation, limits)
    if reason:
        return Classification(TaskType.COMPLEX_REASONING, prefix + reason)
    return Classification(TaskType.SIMPLE_QUERY, prefix + "default")


def _complexity(conversation: Conversation, limits: ClassifyLimits) -> str | None:
    if conversation.reasoning:
        return "reasoning requested"
    if conversation.tools and conversation.tool_choice.mode != "none":
        return "tools offered"
    if conversation.prompt_chars() >= limits.complex_prompt_chars:
        return "long input"
    if len(conversation.messages) >= limits.complex_message_count:
        return "long conversation"
    if _REASONING_CUES.search(conversation.last_user_text()):
        return "reasoning cue"
    return None


def model_count(task_type: TaskType, simple: int, complex_reasoning: int,
                validation: int) -> int:
    """How many models the task type starts with (escalation may add more)."""
    return {TaskType.SIMPLE_QUERY: simple, TaskType.COMPLEX_REASONING: complex_reasoning,
            TaskType.DATA_VALIDATION: validation}[task_type]
