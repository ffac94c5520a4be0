"""The ramp policy file: the shipped one loads, every ramp policy in policies/ loads, and
invalid files name the file and the dotted key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.config import ConfigError
from proxy.ramp.schedule import RampPolicy, is_ramp_policy, load_policy, parse_policy
from tests.ramp.helpers import policy_data, tiny_policy

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"


def ramp_policy_files() -> list[Path]:
    files = []
    for path in sorted(POLICIES.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and is_ramp_policy(data):
            files.append(path)
    return files


def test_the_shipped_policy_is_found_among_the_ramp_policies() -> None:
    assert POLICIES / "ramp.json" in ramp_policy_files()


@pytest.mark.parametrize("path", ramp_policy_files(), ids=lambda p: p.name)
def test_every_ramp_policy_in_policies_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.steps and policy.routes
    assert parse_policy(policy.to_dict()) == policy


def test_shipped_policy_shadows_then_diverts_and_is_documented() -> None:
    policy = load_policy(POLICIES / "ramp.json")
    shadow = [s.shadow_percent for s in policy.steps if not s.divert_percent]
    divert = [s.divert_percent for s in policy.steps if s.divert_percent]
    assert shadow == [1, 5, 25, 100] and divert == [5, 25, 50, 100]
    assert all(step.min_compared >= 1 and step.min_duration_seconds > 0
               for step in policy.steps)
    for word in ("noise floor", "on_rollback", "inconclusive", "min_compared"):
        assert word in policy.description


def test_a_global_ramp_measures_the_listed_routes() -> None:
    policy = tiny_policy(route=None, measure_routes=["/openai", "/anthropic"])
    assert policy.routes == ("/openai", "/anthropic") and policy.scope == "all routes"


def test_step_guardrails_override_by_name_and_survive_storage() -> None:
    steps = [{"shadow_percent": 1, "min_duration_seconds": 0, "min_compared": 1,
              "guardrails": {"divergence": None, "latency_p95": {"max_delta_ms": 50}}},
             {"shadow_percent": 2, "min_duration_seconds": 0, "min_compared": 1}]
    policy = tiny_policy(steps=steps)
    first, second = policy.guardrails_for(0), policy.guardrails_for(1)
    assert first.divergence is None and first.latency_p95 is not None
    assert first.latency_p95.max_delta_ms == 50 and first.error_rate == second.error_rate
    assert second.divergence is not None and second.latency_p95 is not None
    assert second.latency_p95.max_delta_ms == 2000
    stored = parse_policy(json.loads(json.dumps(policy.to_dict())))
    assert stored.guardrails_for(0) == first and stored.guardrails_for(1) == second


def test_steps_are_labelled_from_their_percentages() -> None:
    labels = [s.label for s in tiny_policy().steps]
    assert labels == ["shadow 5%", "shadow 100%", "divert 50% (shadow 100%)"]


def _step(**fields: Any) -> dict[str, Any]:
    return {"shadow_percent": 5, "min_duration_seconds": 60, "min_compared": 10, **fields}


@pytest.mark.parametrize(("changes", "message"), [
    ({"steps": []}, r"steps: Tuple should have at least 1 item"),
    ({"steps": [_step(min_compared=0)]}, r"steps\[0\]\.min_compared: .*greater than or equal to 1"),
    ({"steps": [_step(shadow_percent=0)]}, r"steps\[0\]: a step must shadow or divert"),
    ({"steps": [_step(shadow_percent=12.345)]}, r"steps\[0\]\.shadow_percent: .*two decimals"),
    ({"steps": [_step(shadow_percent=101)]}, r"steps\[0\]\.shadow_percent: .*less than or equal"),
    ({"steps": [_step(shadow_percent=25), _step(shadow_percent=5)]},
     r"steps: \[1\]\.shadow_percent is 5, below the previous step's 25"),
    ({"steps": [_step(), _step()]}, r"two steps are called 'shadow 5%'"),
    ({"steps": [_step(min_duration_seconds=-1)]}, r"steps\[0\]\.min_duration_seconds"),
    ({"steps": [_step(guardrails={"latency": {}})]},
     r"steps\[0\]\.guardrails\.latency: unknown key"),
    ({"route": None}, r"a global ramp \(route null\) needs measure_routes"),
    ({"route": "openai"}, r"route: .*must look like '/openai'"),
    ({"measure_routes": ["/openai/"]}, r"measure_routes\[0\]: .*must look like"),
    ({"lock_ttl_seconds": 0.1}, r"lock_ttl_seconds must exceed twice"),
    ({"on_rollback": "pray"}, r"on_rollback: Input should be 'kill' or 'zero'"),
    ({"confidence": 0.2}, r"confidence: .*greater than or equal to 0.5"),
    ({"schema": 2}, r"schema: Input should be 1"),
    ({"guardrails": {"divergence": {"min_samples": 5}}},
     r"guardrails\.divergence\.min_samples: .*greater than or equal to 30"),
    ({"guardrails": {"error_rate": {"max": 1.5}}}, r"guardrails\.error_rate\.max"),
    ({"guardrails": {"error_rate": {}}}, r"guardrails\.error_rate\.max: Field required"),
    ({"guardrails": {"cost_per_request": {"min_requests": 5}}},
     r"guardrails\.cost_per_request: give max_usd, max_ratio_to_legacy or both"),
    ({"guardrails": {"latency_p95": {"max_delta_ms": "fast"}}},
     r"guardrails\.latency_p95\.max_delta_ms"),
    ({"stepz": []}, r"stepz: unknown key"),
])
def test_invalid_policies_name_file_and_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^ramp\.json: .*" + message):
        parse_policy(policy_data(**changes), "ramp.json")


def test_an_invalid_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ramp.json"
    path.write_text(json.dumps(policy_data(steps=[_step(min_compared="many")])))
    with pytest.raises(ConfigError, match=rf"{path}: steps\[0\]\.min_compared"):
        load_policy(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=rf"{path}: invalid JSON at line 1"):
        load_policy(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.json")


def test_the_model_is_frozen() -> None:
    policy = tiny_policy()
    with pytest.raises(ValueError, match="frozen"):
        policy.on_rollback = "zero"
    assert isinstance(policy, RampPolicy)
