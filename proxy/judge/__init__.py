"""The optional judge: a model that classifies the orchestrator's answer against legacy's
for a sample of the prose comparisons the rules cannot fully settle, so operators see
how often the rules and a model agree, per route.

Module map: `verdict` (the five classes, reading a reply, the agreement with the rules'
label: pure), `rubric` (`policies/judge.json`, the prompt: pure), `sampling` (which
comparisons are judged: pure), `grader` (the background calls, budget, telemetry and
report: composition). This package `__init__` imports nothing, so importing a pure
module never loads the grader's HTTP and Redis adapters.

The verdict is advisory: it never changes a comparison's label, and the ramp's
guardrails never read it.
"""
