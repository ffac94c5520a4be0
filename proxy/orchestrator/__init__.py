"""The orchestrator: answers a request with several models, selected by what was
learned about them, merged by confidence, validated, within a cost limit.

Modules, by layer (imports only go down this list):

    pure core
      registry.py      AIModel and the model registry (config `models`)
      tasks.py         TaskType and the documented request classification
      conversation.py  a client request (OpenAI chat / Anthropic messages) in neutral form
      content.py       an answer in neutral form: text, tool calls, JSON, usage
      wire.py          request bodies for, and replies from, the two model APIs
      cost.py          estimates before calling, actual cost, the per-request budget
      records.py       learned records per model and task type; Beta posteriors
      selection.py     Thompson sampling over the records, cold start, budget fit
      merge.py         grouping equivalent answers; confidence-weighted vote
      validation.py    rules from policies/validation.json
      report.py        performance report and anomaly detection
      request.py, answer.py, render.py   the proxy's seams and the wire rendering
    core (asyncio)
      fanout.py        concurrent calls with deadlines, early stop, cancellation
      engine.py        one request's orchestration, step by step
      learning.py      the in-process view of the records, synced with the store
    adapters
      store.py         learned records in Redis (or memory)
      callers.py       HTTP model callers over proxy.transport
    composition
      pipeline.py      build_pipeline(settings, redis): what the proxy calls
      admin.py         POST /feedback, GET /report on the admin port
      api.py           the guide's AIOrchestrator, OrchestratorConfig, Response
      adapter.py       the guide's MigrationAdapter

Names are resolved lazily, so importing one module does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AIModel": "proxy.orchestrator.registry",
    "TaskType": "proxy.orchestrator.tasks",
    "AIOrchestrator": "proxy.orchestrator.api",
    "OrchestratorConfig": "proxy.orchestrator.api",
    "Response": "proxy.orchestrator.api",
    "ProcessResult": "proxy.orchestrator.api",
    "MigrationAdapter": "proxy.orchestrator.adapter",
    "Pipeline": "proxy.orchestrator.pipeline",
    "build_pipeline": "proxy.orchestrator.pipeline",
    "OrchestratorRequest": "proxy.orchestrator.request",
    "LiveSettings": "proxy.orchestrator.request",
    "ModelRequest": "proxy.orchestrator.request",
    "OrchestratorAnswer": "proxy.orchestrator.answer",
    "CallRecord": "proxy.orchestrator.answer",
    "Rendered": "proxy.orchestrator.render",
    "wire_format_for": "proxy.orchestrator.conversation",
    "render_openai_chat": "proxy.orchestrator.render",
    "render_anthropic": "proxy.orchestrator.render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'proxy.orchestrator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
