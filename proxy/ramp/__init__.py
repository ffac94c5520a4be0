"""Guarded auto-ramp: promote the shadow and divert percentages step by step while the
measured numbers are good, roll back at once when a guardrail is clearly breached.

Layer map: `schedule`, `measurement`, `guardrails`, `controller`, `state` are pure core;
`state_store` (Redis keys and lock), `readings` (reading the comparison report), `levers`
(writing flags) and `control` (transitions) are adapters; `autopilot` is the background
task each replica runs. The operator's commands are `llm-shadow ramp status|start|
pause|resume|stop` (`proxy.cli.ramp`).

Wiring (runtime): `runner = proxy.ramp.autopilot.build_ramp(settings, redis_client)`, then
`await runner.start()` at start-up and `await runner.aclose()` at shutdown. This file
imports nothing: import from the modules.
"""
