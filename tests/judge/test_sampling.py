"""Which comparisons are judged: the operator's two opt-ins first, then the labels and
prose reasons, then a stable sample by request id, independent of the noise sample."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.comparison import Comparison, in_noise_sample
from proxy.config.comparison import JudgeSection
from proxy.judge.sampling import in_judge_sample, not_judged, route_allowed

IDS = [f"req-{index:05d}" for index in range(10_000)]
ON = JudgeSection(enabled=True, model="judge", routes=("/openai",), sample_percent=100)


def minor(reason: str = "text_edit") -> Comparison:
    return Comparison("minor", 0.3, reason=reason)  # type: ignore[arg-type]


@pytest.mark.parametrize("percent", [1.0, 10.0, 33.3, 50.0, 90.0])
def test_the_share_judged_is_the_percentage(percent: float) -> None:
    share = sum(in_judge_sample(request_id, percent) for request_id in IDS) / len(IDS)
    assert share == pytest.approx(percent / 100, abs=0.015)


def test_none_and_all() -> None:
    assert not any(in_judge_sample(request_id, 0) for request_id in IDS[:500])
    assert all(in_judge_sample(request_id, 100) for request_id in IDS[:500])


@given(st.text(min_size=1, max_size=40), st.floats(0, 100), st.floats(0, 100))
def test_raising_the_percentage_only_adds_request_ids(request_id: str, low: float,
                                                      high: float) -> None:
    low, high = sorted((low, high))
    assert not in_judge_sample(request_id, low) or in_judge_sample(request_id, high)


def test_the_judge_sample_is_not_the_noise_sample() -> None:
    both = sum(in_judge_sample(r, 10) and in_noise_sample(r, 10) for r in IDS)
    assert both / len(IDS) == pytest.approx(0.01, abs=0.005)  # independent: 10 % of 10 %


@pytest.mark.parametrize(("section", "route", "comparison", "why"), [
    (JudgeSection(), "/openai", minor(), "off"),
    (JudgeSection(enabled=True, model="judge", routes=("/anthropic",)), "/openai", minor(),
     "route_not_allowed"),
    (ON, "/openai/v1", minor(), "route_not_allowed"),  # the prefix itself, exactly
    (ON, "/openai", Comparison("major", 1.0, reason="fact_changed"), "label"),
    (ON, "/openai", Comparison("identical", 0.0), "label"),
    (ON.model_copy(update={"labels": ("minor", "major")}), "/openai",
     Comparison("major", 1.0, reason="json_value_changed"), "not_prose"),
    (ON, "/openai", minor("embedding_changed"), "not_prose"),
    (ON, "/openai", minor("envelope_changed"), "not_prose"),
    (ON.model_copy(update={"sample_percent": 0.0}), "/openai", minor(), "sampled_out"),
    (ON, "/openai", minor(), None),
    (ON, "/openai", minor("fact_added"), None),
    (ON.model_copy(update={"labels": ("major",)}), "/openai",
     Comparison("major", 1.0, reason="fact_changed"), None),
])
def test_why_a_comparison_is_not_judged(section: JudgeSection, route: str,
                                        comparison: Comparison, why: str | None) -> None:
    assert not_judged(section, route, "r1", comparison) == why


def test_content_may_leave_only_when_enabled_and_listed() -> None:
    listed = JudgeSection(routes=("/openai",), model="judge")
    assert not route_allowed(listed, "/openai")  # listed, but not enabled
    assert route_allowed(ON, "/openai")
    assert not route_allowed(ON, "/anthropic")
