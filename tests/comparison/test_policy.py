"""The divergence policy file: it loads, routes resolve, overrides merge, errors name keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.comparison import DivergencePolicy, label_for, load_policy, parse_policy
from proxy.comparison.policy import RoutePolicy, Thresholds
from proxy.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_policy_loads_and_is_documented() -> None:
    policy = load_policy(ROOT / "policies" / "divergence.json")
    assert "identical" in policy.description and "noise" in policy.description
    assert "id" in policy.default.ignore_keys and "usage" in policy.default.ignore_keys


def test_configured_policy_file_resolves_from_the_config() -> None:
    settings = load_config(str(ROOT / "config.json"), env={})
    assert settings.resolve(settings.config.comparison.policy_file).is_file()


def test_no_file_gives_the_built_in_default() -> None:
    assert load_policy(None) == DivergencePolicy()


POLICY = parse_policy({
    "default": {"thresholds": {"equivalent": 0.1, "minor": 0.4}},
    "routes": {
        "/openai": {"weights": {"finish_reason": 0.2}, "case_sensitive": True},
        "/openai/v1/embeddings": {"thresholds": {"equivalent": 0.01, "minor": 0.05}},
        "/anthropic": {"ignore_keys": ["id"]},
    },
})


@pytest.mark.parametrize(("route", "finish_weight", "equivalent", "case_sensitive"), [
    ("/openai", 0.2, 0.1, True),
    ("/openai/v1/chat/completions", 0.2, 0.1, True),
    ("/openai/v1/embeddings", 0.5, 0.01, False),
    ("/openai2", 0.5, 0.1, False),
    ("/other", 0.5, 0.1, False),
])
def test_longest_prefix_on_segment_boundaries(route: str, finish_weight: float,
                                              equivalent: float, case_sensitive: bool) -> None:
    resolved = POLICY.for_route(route)
    assert resolved.weights.finish_reason == finish_weight
    assert resolved.thresholds.equivalent == equivalent
    assert resolved.case_sensitive is case_sensitive


def test_override_keeps_unnamed_weights_and_replaces_lists() -> None:
    resolved = POLICY.for_route("/anthropic")
    assert resolved.ignore_keys == frozenset({"id"})
    assert resolved.weights.text == 1.0


@pytest.mark.parametrize(("data", "message"), [
    ({"default": {"weights": {"text": 2}}}, "default.weights.text"),
    ({"routes": {"/x": {"weights": {"bogus": 1}}}}, "unknown comparator"),
    ({"routes": {"x": {}}}, "must start with /"),
    ({"default": {"thresholds": {"equivalent": 0.6, "minor": 0.5}}}, "must not exceed"),
    ({"defaults": {}}, "unknown key"),
    ({"default": {"number_tolerance": 1.5}}, r"default\.number_tolerance: .*less than 1"),
    ({"default": {"number_tolerance": -0.1}}, r"default\.number_tolerance"),
    ({"routes": {"/x": {"json_sets": ["tags"]}}},
     r"routes\./x\.json_sets: 'tags' is not a path from the answer's root"),
    ({"routes": {"/x": {"json_sets": ["$.items[0]"]}}}, r"routes\./x\.json_sets"),
    ({"default": {"prose_facts": "sometimes"}}, r"default\.prose_facts"),
])
def test_invalid_policies_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(data, "divergence.json")


def test_invalid_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "divergence.json"
    path.write_text(json.dumps({"default": {"case_sensitive": "maybe"}}))
    with pytest.raises(ConfigError, match=r"divergence\.json: default\.case_sensitive"):
        load_policy(path)


@pytest.mark.parametrize(("score", "identical", "label"), [
    (0.0, True, "identical"), (0.0, False, "equivalent"), (0.15, False, "equivalent"),
    (0.16, False, "minor"), (0.5, False, "minor"), (0.51, False, "major"), (1.0, False, "major"),
])
def test_thresholds(score: float, identical: bool, label: str) -> None:
    assert label_for(score, identical, Thresholds()) == label


def test_route_policy_defaults_match_the_shipped_file() -> None:
    shipped = load_policy(ROOT / "policies" / "divergence.json").default
    assert shipped == RoutePolicy(description=shipped.description)


def test_fact_rule_keys_resolve_per_route() -> None:
    policy = parse_policy({
        "default": {"number_tolerance": 0.01},
        "routes": {"/extract": {"json_sets": ["$.tags", "$.items[*].labels"],
                                "prose_facts": False}},
    })
    extract = policy.for_route("/extract/v1")
    assert extract.number_tolerance == 0.01
    assert extract.json_sets == frozenset({"$.tags", "$.items[*].labels"})
    assert extract.prose_facts is False
    assert policy.for_route("/other").prose_facts is True


def test_shipped_policy_documents_the_fact_rule_keys() -> None:
    description = load_policy(ROOT / "policies" / "divergence.json").description
    for key in ("number_tolerance", "json_sets", "prose_facts", "major"):
        assert key in description
