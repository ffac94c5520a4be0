"""Guarded auto-ramp: promote the shadow and divert percentages step by step while the
measured numbers are good, roll back at once when a guardrail is clearly breached.

Layer map: `policy`, `measurement`, `guardrails`, `controller`, `state` are pure core;
`store` (Redis keys and lock), `reports` (reading the comparison report), `levers`
(writing flags) and `control` (transitions) are adapters; `runner` is the background
task each replica runs. The operator's commands are `llm-shadow ramp status|start|
pause|resume` (`proxy.cli.ramp`).

Wiring (runtime): `runner = build_ramp(settings, redis_client)`, then
`await runner.start()` at start-up and `await runner.aclose()` at shutdown.
"""

from __future__ import annotations

from proxy.ramp.runner import RampRunner, build_ramp

__all__ = ["RampRunner", "build_ramp"]
