"""llm-shadow: a sidecar proxy that shadows or diverts a live share of a legacy service's
LLM calls to an orchestrator pipeline, compares the answers and traces the divergence.

This package exports only the migration guide's public API; everything else is imported
from its own module (`proxy.config`, `proxy.server`, ...).
"""
