"""The names module: the conventions' spellings, one prefix, and the version switch."""

from __future__ import annotations

import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as genai

from proxy.telemetry import names as n


def constants() -> dict[str, str]:
    return {key: value for key, value in vars(n).items()
            if key.isupper() and isinstance(value, str)}


def test_genai_names_match_the_semantic_conventions_package() -> None:
    for key, value in constants().items():
        if key.startswith("GEN_AI_") and hasattr(genai, key):
            assert getattr(genai, key) == value, key


def test_released_cache_creation_name_matches_the_package() -> None:
    assert n.RELEASED.cache_creation_input_tokens == genai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS


def test_project_names_share_one_prefix() -> None:
    for key, value in constants().items():
        if key in {"PREFIX", "EVALUATION_NAME"} or key.startswith(("METRIC_", "ROLE")):
            continue
        if not value.startswith(("gen_ai.", "http.", "url.", "server.", "error.")) \
                and "." in value:
            assert value.startswith(n.PREFIX + "."), (key, value)


def test_attribute_names_are_unique() -> None:
    attribute_keys = [key for key in constants() if not key.startswith("METRIC_")
                      and key not in {"METRIC_COST"}]
    values = [constants()[key] for key in attribute_keys]
    duplicates = {value for value in values if values.count(value) > 1}
    # The evaluation name doubles as the divergence metric's family, by design.
    assert duplicates <= {"llm_shadow.divergence"}


def test_no_deprecated_names() -> None:
    values = set(constants().values())
    assert "gen_ai.system" not in values
    assert not {"gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"} & values


@pytest.mark.parametrize("latest, expected", [
    (False, ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.client.operation.duration")),
    (True, ("gen_ai.usage.cache_write.input_tokens", "gen_ai.client.inference.duration")),
])
def test_semconv_switch(latest: bool, expected: tuple[str, str]) -> None:
    chosen = n.semconv(latest)
    assert (chosen.cache_creation_input_tokens, chosen.operation_duration) == expected


@pytest.mark.parametrize("operation, model, expected", [
    ("chat", "gpt-4o", "chat gpt-4o"), ("embeddings", None, "embeddings"),
    ("invoke_workflow", "orchestrator", "invoke_workflow orchestrator")])
def test_model_span_name(operation: str, model: str | None, expected: str) -> None:
    assert n.model_span_name(operation, model) == expected


def test_bucket_boundaries_are_the_conventions() -> None:
    assert n.DURATION_BUCKETS[0] == 0.01 and n.DURATION_BUCKETS[-1] == 81.92
    assert len(n.DURATION_BUCKETS) == len(n.TOKEN_BUCKETS) == 14
    assert all(b == 4 ** i for i, b in enumerate(n.TOKEN_BUCKETS))
