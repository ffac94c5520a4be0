"""The migration guide's Python API behaves as the guide shows: imports, errors,
`process_request` with every kind of `model_call_func` answer, feedback, reports and
metric export, `OrchestratorConfig`, and `MigrationAdapter` against fake model servers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pydantic
import pytest

import proxy
from proxy import AIModel, AIOrchestrator, MigrationAdapter, OrchestratorConfig, TaskType
from proxy.orchestrator.api import ProcessResult, Response
from proxy.orchestrator.request import ModelRequest
from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.orchestrator.conftest import REPO, run

QWEN = AIModel(name="qwen-max", provider="Alibaba", cost_per_1m_tokens=0.4,
               avg_response_time=2.0)
DEEPSEEK = AIModel(name="deepseek-v3", provider="DeepSeek", cost_per_1m_tokens=0.15,
                   avg_response_time=3.0)


def orchestrator(*models: AIModel, **options: Any) -> AIOrchestrator:
    built = AIOrchestrator(seed=1, **options)
    for model in models or (QWEN, DEEPSEEK):
        built.register_model(model)
    return built


def test_the_package_exports_exactly_the_guides_api() -> None:
    assert sorted(proxy.__all__) == ["AIModel", "AIOrchestrator", "MigrationAdapter",
                                     "OrchestratorConfig", "TaskType"]
    import ai_orchestrator

    assert ai_orchestrator.MigrationAdapter is MigrationAdapter
    assert ai_orchestrator.AIOrchestrator is AIOrchestrator
    assert ai_orchestrator.Response is Response
    with pytest.raises(AttributeError):
        _ = proxy.Pipeline  # type: ignore[attr-defined]


def test_no_models_is_the_guides_value_error() -> None:
    empty = AIOrchestrator()
    with pytest.raises(ValueError, match=r"^No AI models available for routing$"):
        run(empty.process_request(prompt="?", model_call_func=lambda m, r: "x"))
    disabled = orchestrator(AIModel("off", enabled=False))
    with pytest.raises(ValueError, match="No AI models available for routing"):
        run(disabled.process_request(prompt="?", model_call_func=lambda m, r: "x"))


def test_no_caller_is_the_guides_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"^model_call_func is required$"):
        run(orchestrator().process_request(prompt="Get GPU prices"))


def test_the_guides_new_api_example() -> None:
    seen: list[tuple[str, str]] = []

    async def call_model_function(model: AIModel, request: ModelRequest) -> Response:
        seen.append((model.name, request.prompt))
        return Response(content="RTX 4090: $1599", usage={"input_tokens": 12,
                                                          "output_tokens": 6})

    result = run(orchestrator().process_request(
        prompt="Get GPU prices", quality_threshold=0.8, cost_limit=0.1,
        model_call_func=call_model_function))
    assert isinstance(result, ProcessResult)
    assert result.data == "RTX 4090: $1599"
    assert sorted(result.contributing_models) == ["deepseek-v3", "qwen-max"]
    assert set(result.confidence_scores) == {"deepseek-v3", "qwen-max"}
    assert result.confidence >= 0.8 and result.success
    assert {prompt for _, prompt in seen} == {"Get GPU prices"}
    assert result.cost == pytest.approx((12 + 6) * (0.4 + 0.15) / 1e6)


@pytest.mark.parametrize("answer", [
    "Paris",
    {"content": "Paris", "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
    {"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris"},
                             "finish_reason": "stop"}], "usage": {"prompt_tokens": 3,
                                                                  "completion_tokens": 1}},
    {"id": "m", "type": "message", "role": "assistant", "content": [
        {"type": "text", "text": "Paris"}], "usage": {"input_tokens": 3, "output_tokens": 1}},
    Response("Paris", confidence=0.9),
])
def test_model_call_func_may_return_str_dict_or_response(answer: Any) -> None:
    async def call(model: AIModel, request: ModelRequest) -> Any:
        return answer

    result = run(orchestrator().process_request(prompt="Capital of France?",
                                                model_call_func=call))
    assert result.data == "Paris" and len(result.contributing_models) == 2


def test_a_dict_answer_is_structured_data() -> None:
    async def call(model: AIModel, request: ModelRequest) -> Any:
        return {"gpu": "H100", "price_usd": 25000.0}

    result = run(orchestrator().process_request(prompt="price?", model_call_func=call))
    assert result.data == {"gpu": "H100", "price_usd": 25000.0}


def test_a_failing_caller_excludes_that_model_and_never_raises() -> None:
    async def call(model: AIModel, request: ModelRequest) -> str:
        if model.name == "qwen-max":
            raise ConnectionError("boom")
        return "ok"

    result = run(orchestrator().process_request(prompt="?", model_call_func=call,
                                                quality_threshold=0.4))
    assert result.contributing_models == ["deepseek-v3"]
    errors = {c.model: c.error_type for c in result.calls if c.outcome == "error"}
    assert errors == {"qwen-max": "ConnectionError"}

    async def broken(model: AIModel, request: ModelRequest) -> str:
        raise TimeoutError

    failed = run(orchestrator().process_request(prompt="?", model_call_func=broken))
    assert failed.data is None and failed.status == "failed" and not failed.success


def test_low_confidence_is_reported_when_models_disagree() -> None:
    async def call(model: AIModel, request: ModelRequest) -> str:
        return model.name  # every model says something different

    result = run(orchestrator().process_request(prompt="?", model_call_func=call))
    assert result.status == "low_confidence" and "below the quality threshold" in result.reason
    assert result.data in ("qwen-max", "deepseek-v3")


def test_feedback_changes_reliability_and_reports_show_it(tmp_path: Path) -> None:
    orch = orchestrator()

    async def call(model: AIModel, request: ModelRequest) -> str:
        return "Paris"

    result = run(orch.process_request(prompt="Capital of France?", model_call_func=call))
    before = orch.learning.reliability("simple_query", "qwen-max")
    # The guide's call, made outside an event loop: done when it returns.
    assert orch.record_feedback(request_id=result.request_id, model_name="qwen-max",
                                task_type=TaskType.SIMPLE_QUERY, was_correct=False)
    assert not orch.record_feedback(result.request_id, "qwen-max", "simple_query", False)
    assert orch.learning.reliability("simple_query", "qwen-max") < before

    text = orch.generate_performance_report(output_format="text")
    for needle in ("qwen-max", "deepseek-v3", "simple_query", "calls", "success",
                   "feedback", "p50", "p95", "cost USD", "0/1 0.0%", "Anomalies:"):
        assert needle in text
    document = json.loads(orch.generate_performance_report(output_format="json"))
    qwen = document["models"]["qwen-max"]["task_types"]["simple_query"]
    assert (qwen["calls"], qwen["feedback_incorrect"], qwen["success_rate"]) == (1, 1, 1.0)
    assert qwen["latency_p50"] is not None and qwen["cost_usd"] > 0
    path = orch.export_metrics(tmp_path / "metrics.json")
    exported = json.loads(path.read_text())
    assert exported["models"]["deepseek-v3"]["totals"]["calls"] == 1
    with pytest.raises(ValueError):
        orch.generate_performance_report(output_format="html")


def test_feedback_inside_an_event_loop_lands_before_the_next_request() -> None:
    orch = orchestrator()

    async def call(model: AIModel, request: ModelRequest) -> str:
        return "Paris"

    async def go() -> int:
        result = await orch.process_request(prompt="?", model_call_func=call)
        orch.record_feedback(result.request_id, "qwen-max", TaskType.SIMPLE_QUERY, True)
        await orch.process_request(prompt="?", model_call_func=call)
        return orch.learning.record("simple_query", "qwen-max").feedback_correct

    assert run(go()) == 1
    assert "qwen-max" in orch.generate_performance_report()


def test_orchestrator_config_takes_the_guides_keywords() -> None:
    config = OrchestratorConfig(simple_query_model_count=1, complex_reasoning_model_count=2,
                                validation_model_count=3, model_timeout_seconds=60.0,
                                enable_early_result_processing=True)
    assert config.model_timeout_seconds == 60.0 and config.default_quality_threshold == 0.8
    with pytest.raises(pydantic.ValidationError):
        OrchestratorConfig(simple_query_model_count=0)
    with pytest.raises(pydantic.ValidationError):
        OrchestratorConfig(simple_query_modle_count=1)  # type: ignore[call-arg]

    calls: list[str] = []

    async def call(model: AIModel, request: ModelRequest) -> str:
        calls.append(model.name)
        return "x"

    three = AIModel("third", cost_per_1m_tokens=0.2)
    orch = orchestrator(QWEN, DEEPSEEK, three, config=OrchestratorConfig(
        validation_model_count=3, enable_early_result_processing=False))
    run(orch.process_request(prompt="?", task_type=TaskType.DATA_VALIDATION,
                             model_call_func=call))
    assert sorted(calls) == ["deepseek-v3", "qwen-max", "third"]


def test_cost_limit_holds_in_the_python_api() -> None:
    pricey = AIModel("pricey", cost_per_1m_tokens=1000.0)
    calls: list[str] = []

    async def call(model: AIModel, request: ModelRequest) -> str:
        calls.append(model.name)
        return "x"

    result = run(orchestrator(QWEN, pricey).process_request(
        prompt="?", cost_limit=0.01, model_call_func=call))
    assert "pricey" not in calls and result.cost <= 0.01


# --- MigrationAdapter ----------------------------------------------------------------


def write_config(tmp_path: Path, fleet: ModelFleet, **sections: Any) -> Path:
    config = {"models": fleet.entries(), "redis": {"url": "redis://127.0.0.1:9/0"},
              "orchestrator": {"validation_policy_file":
                               str(REPO / "policies" / "validation.json")}}
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Any:
    gpus = '[{"name": "H100", "price_usd": 25000}]'
    with ModelFleet({"qwen-max": ModelBehaviour(answer=gpus),
                     "deepseek-chat": ModelBehaviour(answer=gpus)}) as models:
        monkeypatch.setenv("FAKE_KEY_QWEN_MAX", "sk-qwen")
        monkeypatch.setenv("FAKE_KEY_DEEPSEEK_CHAT", "sk-deepseek")
        yield models


def test_migration_adapter_the_guides_way(fleet: ModelFleet, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    adapter = MigrationAdapter(write_config(tmp_path, fleet))
    orch = adapter.initialize_orchestrator()
    assert orch is not None  # "✓ Setup successful"
    assert [m.name for m in orch.models] == ["qwen-max", "deepseek-chat"]
    result = run(adapter.fetch_data_with_collaboration(
        prompt="Get GPU prices", data_type="gpu", quality_threshold=0.8, cost_limit=0.1))
    assert set(result) == {"success", "data", "metadata", "error"}
    assert result["success"] and result["error"] is None
    assert result["data"] == [{"name": "H100", "price_usd": 25000}]
    metadata = result["metadata"]
    assert metadata["source"] == "orchestrator" and metadata["data_type"] == "gpu"
    assert set(metadata["contributing_models"]) == {"qwen-max", "deepseek-chat"}
    assert metadata["confidence"] >= 0.8 and metadata["cost_usd"] <= 0.1
    sent = fleet["qwen-max"].requests[0]
    assert sent.header("authorization") == "Bearer sk-qwen"
    assert sent.json()["response_format"] == {"type": "json_object"}  # the gpu rule wants JSON
    assert "sk-qwen" not in caplog.text and "sk-deepseek" not in caplog.text
    assert "kept in memory only" in caplog.text  # Redis at port 9 does not answer


def test_migration_adapter_failure_is_the_legacy_dict(fleet: ModelFleet,
                                                      tmp_path: Path) -> None:
    fleet["qwen-max"].behaviour.answer = "no JSON here"
    fleet["deepseek-chat"].behaviour.status = 500
    adapter = MigrationAdapter(write_config(tmp_path, fleet))
    result = run(adapter.fetch_data_with_collaboration("Get GPU prices", "gpu"))
    assert result["success"] is False and result["data"] is None
    assert "no valid answer" in result["error"]
    assert result["metadata"]["status"] == "failed"


def test_migration_adapter_falls_back_to_the_legacy_function(fleet: ModelFleet,
                                                             tmp_path: Path) -> None:
    fleet["qwen-max"].behaviour.status = 503
    fleet["deepseek-chat"].behaviour.status = 503

    async def legacy_fetch(**kwargs: Any) -> dict[str, Any]:
        return {"success": True, "data": ["legacy"], "metadata": {"model": "old"},
                "error": None}

    adapter = MigrationAdapter(write_config(tmp_path, fleet), legacy_fetch=legacy_fetch)
    result = run(adapter.fetch_data_with_collaboration("Get GPU prices", "gpu"))
    assert result["data"] == ["legacy"] and result["metadata"]["source"] == "legacy"
    assert "no valid answer" in result["metadata"]["fallback_reason"]


def test_initialize_returns_none_when_switched_off_or_misconfigured(
        fleet: ModelFleet, tmp_path: Path) -> None:
    off = write_config(tmp_path, fleet, system={"use_orchestrator": False})
    assert MigrationAdapter(off).initialize_orchestrator() is None  # "✗ Setup failed"
    result = run(MigrationAdapter(off).fetch_data_with_collaboration("?"))
    assert result["success"] is False and "not available" in result["error"]
    broken = tmp_path / "broken.json"
    broken.write_text('{"orchestrator": {"default_quality_threshold": 7}}')
    assert MigrationAdapter(broken).initialize_orchestrator() is None
    assert MigrationAdapter(tmp_path / "missing.json").initialize_orchestrator() is None


def test_migration_adapter_leaves_out_models_without_their_api_key(
        fleet: ModelFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("FAKE_KEY_DEEPSEEK_CHAT")
    adapter = MigrationAdapter(write_config(tmp_path, fleet))
    orch = adapter.initialize_orchestrator()
    assert orch is not None
    assert [m.name for m in orch.models if m.enabled] == ["qwen-max"]
    assert "deepseek-chat (FAKE_KEY_DEEPSEEK_CHAT)" in caplog.text
    run(adapter.fetch_data_with_collaboration("Get GPU prices", "gpu"))
    assert not fleet["deepseek-chat"].requests
    monkeypatch.delenv("FAKE_KEY_QWEN_MAX")
    assert MigrationAdapter(write_config(tmp_path, fleet)).initialize_orchestrator() is None
    assert "no enabled model has its API key (set FAKE_KEY_DEEPSEEK_CHAT, FAKE_KEY_QWEN_MAX)" \
        in caplog.text
    own_caller = MigrationAdapter(write_config(tmp_path, fleet),
                                  model_call_func=lambda model, request: "Paris")
    assert own_caller.initialize_orchestrator() is not None  # keys are the caller's business
