"""`ai_orchestrator`: the import name the migration guide uses, for the same API as
`proxy` (`from ai_orchestrator import MigrationAdapter`).

Layer: composition (an alias). The repository's top level is fixed, so this package lives
inside `proxy/` and `pyproject.toml` maps the top-level name `ai_orchestrator` to this
folder (`[tool.setuptools.packages.find] where`); `pip install -e .` and wheels both
provide it. `Response` (what a `model_call_func` may return) is exported here too, since
the guide's examples use it.
"""

from __future__ import annotations

from proxy.orchestrator.adapter import MigrationAdapter
from proxy.orchestrator.api import AIOrchestrator, OrchestratorConfig, ProcessResult, Response
from proxy.orchestrator.classification import TaskType
from proxy.orchestrator.registry import AIModel

__all__ = ["AIModel", "AIOrchestrator", "MigrationAdapter", "OrchestratorConfig",
           "ProcessResult", "Response", "TaskType"]
