"""The `comparison.judge` section: off and allowed nowhere by default; when enabled it
needs a model from `models` and configured routes, and every error names the judge's
own dotted key."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, parse_config
from proxy.config.comparison import JudgeSection

MODELS = [{"name": "grader"}, {"name": "other"}]


def test_off_and_allowed_nowhere_by_default() -> None:
    judge = parse_config({}).comparison.judge
    assert judge == JudgeSection()
    assert judge.enabled is False and judge.routes == () and judge.model is None
    assert judge.labels == ("equivalent", "minor")


def test_a_complete_judge_loads() -> None:
    config = parse_config({"models": MODELS, "comparison": {"judge": {
        "enabled": True, "model": "grader", "routes": ["/anthropic"], "labels": ["major"]}}})
    assert config.comparison.judge.routes == ("/anthropic",)


@pytest.mark.parametrize(("judge", "expected"), [
    ({"enabled": True, "routes": ["/openai"]},
     "config.json: comparison.judge: enabled needs `model`: the name of one of `models`"),
    ({"enabled": True, "model": "grader"},
     "config.json: comparison.judge: enabled needs `routes`: the route prefixes whose "
     "answers may be sent to the judge model (none are by default)"),
    ({"enabled": True, "model": "grader", "routes": ["/openai"], "labels": []},
     "config.json: comparison.judge: enabled needs `labels`"),
    ({"model": "nobody"},
     "config.json: comparison.judge.model: 'nobody' is not one of `models` (grader, other)"),
    ({"routes": ["/openai", "/azure"]},
     "config.json: comparison.judge.routes[1]: '/azure' is not a configured route "
     "(/openai, /anthropic)"),
    ({"routes": ["openai"]},
     "config.json: comparison.judge.routes: 'openai' is not a route prefix"),
    ({"labels": ["identical"]},
     "config.json: comparison.judge.labels[0]: Input should be 'equivalent', 'minor' or "
     "'major'"),
    ({"sample_percent": 101}, "config.json: comparison.judge.sample_percent: Input should "
     "be less than or equal to 100"),
    ({"timeout_seconds": 0}, "config.json: comparison.judge.timeout_seconds: Input should "
     "be greater than 0"),
    ({"max_concurency": 2}, "config.json: comparison.judge.max_concurency: unknown key"),
])
def test_errors_name_the_file_and_the_judges_key(judge: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"models": MODELS, "comparison": {"judge": judge}}, "config.json")
    assert expected in str(caught.value)
