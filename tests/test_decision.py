"""The traffic decision: precedence table, bucket layout, and properties of the sticky
basis-point buckets (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.decision import BASIS_POINTS, Decision, band, basis_points, bucket_of, decide
from proxy.flags.view import LocalLayer
from tests.flags.helpers import view

CHAT = "/v1/chat/completions"
ELIGIBLE = (CHAT, "/v1/messages")

percent = st.integers(min_value=0, max_value=BASIS_POINTS).map(lambda bp: bp / 100)
keys = st.text(min_size=0, max_size=40)


def key_in_band(target: str, shadow: float, divert: float) -> str:
    """A bucket key that lands in the wanted band under the given percentages."""
    for n in range(100_000):
        if band(bucket_of(f"k{n}"), basis_points(shadow), basis_points(divert)) == target:
            return f"k{n}"
    raise AssertionError("no key found")


@pytest.mark.parametrize(
    ("state", "fields", "path", "expected"),
    [
        ("not_ready", {"shadow_percent": 100}, CHAT, Decision("legacy", "not_ready")),
        ("failsafe", {"shadow_percent": 100}, CHAT, Decision("legacy", "failsafe")),
        ("override", {"divert_percent": 100}, CHAT, Decision("legacy", "override")),
        ("ready", {"kill": True, "divert_percent": 100}, CHAT, Decision("legacy", "kill")),
        ("ready", {"divert_percent": 100, "routes": {"/openai": {"kill": True}}}, CHAT,
         Decision("legacy", "route_kill")),
        ("ready", {"divert_percent": 100, "system": {"use_orchestrator": False}}, CHAT,
         Decision("legacy", "use_orchestrator_off")),
        ("ready", {"divert_percent": 100}, "/v1/models", Decision("legacy", "not_eligible")),
        ("ready", {"kill": True, "system": {"migration_mode": "full"}}, CHAT,
         Decision("legacy", "kill")),
        ("stale", {"kill": True}, CHAT, Decision("legacy", "kill")),
    ],
)
def test_precedence(state: str, fields: dict[str, object], path: str,
                    expected: Decision) -> None:
    assert decide(view(state, **fields), "/openai", path, "key", ELIGIBLE) == expected  # type: ignore[arg-type]


def test_full_migration_diverts_every_eligible_request() -> None:
    flags = view(system={"migration_mode": "full"})
    decision = decide(flags, "/openai", CHAT, "any", ELIGIBLE)
    assert (decision.action, decision.reason) == ("divert", "full_migration")


def test_stale_view_keeps_applying_last_known_good() -> None:
    decision = decide(view("stale", shadow_percent=100), "/openai", CHAT, "k", ELIGIBLE)
    assert decision.action == "shadow"


def test_local_layer_use_orchestrator_false_forces_legacy() -> None:
    flags = view(local=LocalLayer(use_orchestrator=False), divert_percent=100)
    assert decide(flags, "/openai", CHAT, "k", ELIGIBLE).reason == "use_orchestrator_off"


def test_route_override_replaces_global_percentages() -> None:
    flags = view(shadow_percent=0, routes={"/anthropic": {"shadow_percent": 100}})
    assert decide(flags, "/anthropic", "/v1/messages", "k", ELIGIBLE).action == "shadow"
    assert decide(flags, "/openai", CHAT, "k", ELIGIBLE).action == "legacy"


def test_route_override_null_inherits() -> None:
    flags = view(divert_percent=100, routes={"/openai": {"shadow_percent": 50}})
    assert decide(flags, "/openai", CHAT, "k", ELIGIBLE).action == "divert"


@pytest.mark.parametrize(("action", "reason"), [
    ("divert", "divert_band"), ("shadow", "shadow_band"), ("legacy", "outside_bands")])
def test_bands_report_their_reason(action: str, reason: str) -> None:
    key = key_in_band(action, 30, 30)
    decision = decide(view(shadow_percent=30, divert_percent=30), "/openai", CHAT, key,
                      ELIGIBLE)
    assert (decision.action, decision.reason, decision.bucket) == (action, reason,
                                                                   bucket_of(key))


def test_bucket_is_pinned() -> None:
    # Literal values: a change of hash function would silently move every conversation
    # to another bucket (and every replica that upgrades before the others would disagree).
    assert (bucket_of("conversation-1"), bucket_of("tenant-42"), bucket_of("")) == \
        (9476, 2308, 9876)


@given(keys)
def test_bucket_in_range(key: str) -> None:
    assert 0 <= bucket_of(key) < BASIS_POINTS


@given(keys, percent, percent, percent)
def test_raising_shadow_only_adds_buckets(key: str, s1: float, s2: float, d: float) -> None:
    low, high = sorted((s1, s2))
    flags_low = view(shadow_percent=low, divert_percent=d)
    flags_high = view(shadow_percent=high, divert_percent=d)
    if decide(flags_low, "/openai", CHAT, key, ELIGIBLE).action == "shadow":
        assert decide(flags_high, "/openai", CHAT, key, ELIGIBLE).action == "shadow"


@given(keys, percent, percent, percent)
def test_raising_divert_only_adds_buckets(key: str, d1: float, d2: float, s: float) -> None:
    low, high = sorted((d1, d2))
    before = decide(view(shadow_percent=s, divert_percent=low), "/openai", CHAT, key, ELIGIBLE)
    after = decide(view(shadow_percent=s, divert_percent=high), "/openai", CHAT, key, ELIGIBLE)
    if before.action == "divert":
        assert after.action == "divert"
    # Raising divert never sends a legacy-only request to shadow, nor the reverse.
    if after.action == "shadow":
        assert before.action == "shadow"


@given(keys, percent)
def test_zero_means_none_and_hundred_means_all(key: str, other: float) -> None:
    assert decide(view(shadow_percent=other, divert_percent=0), "/openai", CHAT, key,
                  ELIGIBLE).action != "divert"
    assert decide(view(shadow_percent=0, divert_percent=other), "/openai", CHAT, key,
                  ELIGIBLE).action != "shadow"
    assert decide(view(divert_percent=100, shadow_percent=other), "/openai", CHAT, key,
                  ELIGIBLE).action == "divert"
    assert decide(view(shadow_percent=100, divert_percent=0), "/openai", CHAT, key,
                  ELIGIBLE).action == "shadow"


@given(st.integers(min_value=0, max_value=BASIS_POINTS),
       st.integers(min_value=0, max_value=BASIS_POINTS))
def test_band_boundaries_are_exact(shadow_bp: int, divert_bp: int) -> None:
    counts = {"legacy": 0, "shadow": 0, "divert": 0}
    for bucket in range(BASIS_POINTS):
        counts[band(bucket, shadow_bp, divert_bp)] += 1
    assert counts["divert"] == divert_bp
    assert counts["shadow"] == min(shadow_bp, BASIS_POINTS - divert_bp)


@settings(max_examples=20, deadline=None)
@given(percent, percent)
def test_observed_share_within_tolerance_over_10000_keys(s: float, d: float) -> None:
    flags = view(shadow_percent=s, divert_percent=d)
    counts = {"legacy": 0, "shadow": 0, "divert": 0}
    for n in range(10_000):
        counts[decide(flags, "/openai", CHAT, f"req-{n}", ELIGIBLE).action] += 1
    expected_divert = d / 100
    expected_shadow = min(s, 100 - d) / 100
    # Binomial standard deviation is at most 0.005 at n=10,000; allow five of them.
    assert abs(counts["divert"] / 10_000 - expected_divert) <= 0.025
    assert abs(counts["shadow"] / 10_000 - expected_shadow) <= 0.025


def test_documented_example_five_and_five() -> None:
    flags = view(shadow_percent=5, divert_percent=5)
    counts = {"legacy": 0, "shadow": 0, "divert": 0}
    for n in range(10_000):
        counts[decide(flags, "/openai", CHAT, f"conv-{n}", ELIGIBLE).action] += 1
    assert 400 <= counts["shadow"] <= 600 and 400 <= counts["divert"] <= 600


def test_bucket_key_prefers_the_configured_header() -> None:
    from proxy.decision import bucket_key

    assert bucket_key("conv-9", "req-1") == "conv-9"
    assert bucket_key(None, "req-1") == "req-1"
    assert bucket_key("", "req-1") == "req-1"


def test_a_route_kill_takes_only_that_route_from_the_orchestrator() -> None:
    """What shadows already running are cancelled by: the same precedence as `decide`."""
    from proxy.decision import orchestrator_allowed
    from tests.fakes.records import flag_view as view

    killed = view(shadow_percent=10, routes={"/openai": {"kill": True}})
    assert not orchestrator_allowed(killed, "/openai")
    assert orchestrator_allowed(killed, "/anthropic")
    zeroed = view(shadow_percent=10, routes={"/openai": {"shadow_percent": 0}})
    assert not orchestrator_allowed(zeroed, "/openai")
    assert not orchestrator_allowed(view(shadow_percent=10, kill=True), "/anthropic")
    assert orchestrator_allowed(view(system={"migration_mode": "full"}), "/openai")
