"""llm-shadow: a sidecar proxy that shadows or diverts a live share of a legacy service's
LLM calls to an orchestrator pipeline, compares the answers and traces the divergence.

This package exports only the migration guide's public API; everything else is imported
from its own module (`proxy.config`, `proxy.server`, ...):

    from proxy import AIOrchestrator, AIModel, OrchestratorConfig, TaskType, MigrationAdapter

The guide's own spelling, `from ai_orchestrator import ...`, works too once the package is
installed (`pip install -e .` or a wheel): `ai_orchestrator` is a thin alias package kept
in `proxy/orchestrator/compat/`. The names resolve lazily, so `import proxy.config` (the
proxy's start-up path) does not pay for the orchestrator's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proxy.orchestrator.adapter import MigrationAdapter
    from proxy.orchestrator.api import AIOrchestrator, OrchestratorConfig
    from proxy.orchestrator.classification import TaskType
    from proxy.orchestrator.registry import AIModel

__all__ = ["AIModel", "AIOrchestrator", "MigrationAdapter", "OrchestratorConfig", "TaskType"]

_HOMES = {
    "AIModel": "proxy.orchestrator.registry",
    "AIOrchestrator": "proxy.orchestrator.api",
    "OrchestratorConfig": "proxy.orchestrator.api",
    "TaskType": "proxy.orchestrator.classification",
    "MigrationAdapter": "proxy.orchestrator.adapter",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'proxy' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return __all__
