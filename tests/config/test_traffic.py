"""The `flags` and `traffic` configuration sections: defaults and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, parse_config
from proxy.config.traffic import two_decimals


def test_defaults_follow_the_state_machine_design() -> None:
    flags = parse_config({}).flags
    assert (flags.poll_interval, flags.stale_after, flags.max_stale) == (0.25, 1.5, 3.0)
    assert parse_config({}).traffic.bucket_header == "x-conversation-id"


@pytest.mark.parametrize(("section", "where"), [
    ({"flags": {"stale_after": 5, "max_stale": 3}}, "stale_after must not exceed"),
    ({"flags": {"poll_interval": 2, "stale_after": 1.5}}, "poll_interval must be shorter"),
    ({"flags": {"heartbeat_interval": 5, "heartbeat_ttl": 5}}, "heartbeat_ttl"),
    ({"flags": {"ping_interval": 3, "subscriber_watchdog": 3}}, "subscriber_watchdog"),
    ({"flags": {"store": "etcd"}}, "flags.store"),
    ({"traffic": {"shadow_percent": 12.345}}, "two decimals"),
    ({"traffic": {"divert_percent": 101}}, "traffic.divert_percent"),
    ({"traffic": {"eligible_paths": ["v1/chat"]}}, "must start with '/'"),
])
def test_refusals_name_the_key(section: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        parse_config(section, "config.json")


def test_bucket_header_is_lower_cased() -> None:
    assert parse_config({"traffic": {"bucket_header": " X-Tenant "}}).traffic.bucket_header \
        == "x-tenant"


@pytest.mark.parametrize(("value", "normalised"), [(0.29, 0.29), (12.5, 12.5), (100, 100.0),
                                                    (0.1 + 0.2, 0.3)])
def test_two_decimals(value: float, normalised: float) -> None:
    assert two_decimals(value) == normalised
