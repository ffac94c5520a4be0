"""Every file in policies/ loads with its own loader (the same validation that runs at
start-up), so a shipped policy can never stop a sidecar from starting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.comparison.policy import load_policy as load_divergence
from proxy.judge.rubric import load_rubric as load_judge
from proxy.orchestrator.validation import load_policy as load_validation
from proxy.ramp.schedule import load_policy as load_ramp

POLICIES = Path(__file__).resolve().parents[1] / "policies"
LOADERS: dict[str, Callable[[Path], Any]] = {
    "divergence.json": load_divergence,
    "judge.json": load_judge,
    "ramp.json": load_ramp,
    "validation.json": load_validation,
}


def test_every_policy_file_has_a_loader() -> None:
    assert sorted(path.name for path in POLICIES.glob("*.json")) == sorted(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_policy_file_loads(name: str) -> None:
    assert LOADERS[name](POLICIES / name) is not None
