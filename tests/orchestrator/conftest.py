"""Helpers for the orchestrator's tests: settings pointing at a fleet of fake models,
and a pipeline built from them the way the Runtime builds it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

from proxy.config import Settings, parse_config
from proxy.orchestrator.pipeline import Pipeline, build_pipeline
from proxy.orchestrator.request import LiveSettings, OrchestratorRequest
from proxy.redisclient import Client, redis_client
from tests.fakes.models import ModelFleet

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Async tests run in plain functions (no pytest-asyncio)."""
    return asyncio.run(coro)


def fleet_settings(fleet: ModelFleet, *, orchestrator: Mapping[str, Any] | None = None,
                   models: Mapping[str, Mapping[str, Any]] | None = None,
                   redis_url: str = "redis://127.0.0.1:9/0",
                   key_prefix: str = "test") -> Settings:
    """Settings with the fleet as `models` (each with its own fake key) and the repo's
    validation policy."""
    entries = fleet.entries(**(models or {}))
    data = {"models": entries, "orchestrator": {"selection": {"seed": 7}, **(orchestrator or {})},
            "redis": {"url": redis_url, "key_prefix": key_prefix},
            "proxy": {"transport": "aiohttp"}}
    config = parse_config(data, "<test>")
    keys = {entry["name"]: SecretStr(f"sk-model-{entry['name']}") for entry in entries}
    return Settings(config=config, source="<test>", base_dir=REPO, model_keys=keys)


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}


def request(body: Mapping[str, Any], request_id: str = "req-1", *,
            wire_format: str = "openai_chat", live: LiveSettings | None = None,
            **extra: Any) -> OrchestratorRequest:
    return OrchestratorRequest(body=body, wire_format=wire_format,  # type: ignore[arg-type]
                               request_id=request_id, live=live or LiveSettings(), **extra)


def memory_redis() -> Client:
    """This test's in-process Redis (`memory://`): learned records stay in the test."""
    return redis_client("memory://", connect_timeout=0.5, socket_timeout=0.5)


async def started(settings: Settings, redis: Any = None) -> Pipeline:
    pipeline = build_pipeline(settings, redis if redis is not None else memory_redis())
    await pipeline.start()
    return pipeline
