"""The guide's `MigrationAdapter`: the legacy API (`fetch_data_with_collaboration`)
answered by the orchestrator, and the live switches (`update_config`,
`toggle_orchestrator`) written to the shared flags so they reach every replica.

Layer: composition (for library users). The configuration comes from `config.json` like
the proxy's (`proxy.config.load_config`: the path given, else `$LLM_SHADOW_CONFIG`, else
`./config.json`); model keys from the environment variables the models name. The live
flag snapshot in Redis takes precedence over the file for `system`, `feature_flags` and
the `orchestrator` defaults, as it does in the proxy.

- `initialize_orchestrator()` returns an `AIOrchestrator` built from the configuration,
  or None (with the reason logged) when the configuration is invalid, no model is
  enabled, or the orchestrator is switched off (`system.use_orchestrator: false`).
  Learned records go to the configured Redis when it answers, else stay in memory
  (logged). When the adapter makes the model calls itself (no `model_call_func`), a
  model whose `api_key_env` variable is unset is left out, as in the proxy, and the
  log names the variable; with a `model_call_func` of yours, keys are yours to handle.
- `fetch_data_with_collaboration(prompt, data_type, quality_threshold, cost_limit)`
  returns the legacy dict `{"success", "data", "metadata", "error"}` and never raises for
  a model failure. `success` is true only at or above the quality threshold; below it
  the best answer is still in `data`. With a `legacy_fetch` function given, a switched-off
  or failed orchestrator falls back to it while `legacy_system.enabled` is true.
- `update_config(changes)` is a validated deep-merge into the live snapshot (unknown keys
  are refused with `ValueError`; an unreachable Redis raises `StoreError`), returning the
  new snapshot as a dict. `toggle_orchestrator(False)` sets `system.use_orchestrator`
  false: every replica goes legacy-only, and `toggle_orchestrator(True)` restores the
  previous percentages. `rollback()` is the hard kill switch (`llm-shadow rollback`).
  Changes made elsewhere (CLI, admin API, another process) reach a running adapter
  within `LIVE_REFRESH_SECONDS`: it re-reads the snapshot before a request when its copy
  is older than that.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from proxy.config import ConfigError, Settings, load_config
from proxy.config.policyfiles import load_validation
from proxy.orchestrator.api import (
    AIOrchestrator,
    ModelCallFunc,
    OrchestratorConfig,
    ProcessResult,
    run_blocking,
)
from proxy.orchestrator.callers import HttpModelCaller
from proxy.orchestrator.learned import Evidence
from proxy.orchestrator.learned_store import MemoryLearningStore, RedisLearningStore, reachable
from proxy.orchestrator.learning import Learning
from proxy.orchestrator.pipeline import usable_models
from proxy.orchestrator.registry import AIModel
from proxy.orchestrator.request import ModelRequest
from proxy.orchestrator.validation import PolicyError
from proxy.orchestrator.wire import Reply
from proxy.transport import PoolLimits, build_client

log = logging.getLogger("llm_shadow.orchestrator.adapter")

LegacyFetch = Callable[..., Awaitable[Mapping[str, Any]]]
LIVE_REFRESH_SECONDS = 5.0


class MigrationAdapter:
    def __init__(self, config_path: str | os.PathLike[str] | None = None, *,
                 settings: Settings | None = None,
                 model_call_func: ModelCallFunc | None = None,
                 legacy_fetch: LegacyFetch | None = None, actor: str | None = None):
        self._config_path = os.fspath(config_path) if config_path is not None else None
        self._settings = settings
        self._model_call_func = model_call_func
        self._legacy_fetch = legacy_fetch
        self.actor = actor or _default_actor()
        self.orchestrator: AIOrchestrator | None = None
        self.live: Any = None  # the last flag snapshot read or written
        self._live_read_at = float("-inf")

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_config(self._config_path)
        return self._settings

    # --- the orchestrator --------------------------------------------------------------

    def initialize_orchestrator(self) -> AIOrchestrator | None:
        try:
            settings = self.settings
            policy, _ = load_validation(settings)
        except (ConfigError, PolicyError) as exc:
            log.error("orchestrator not initialised: %s", exc)
            return None
        self.live = self._read_live(settings)
        system = self.live.system if self.live is not None else settings.config.system
        if not system.use_orchestrator:
            log.warning("orchestrator not initialised: it is switched off "
                        "(system.use_orchestrator is false)")
            return None
        if not any(model.enabled for model in settings.config.models):
            log.error("orchestrator not initialised: no enabled model in %s", settings.source)
            return None
        models = self._models(settings)
        if not any(model.enabled for model in models):
            log.error("orchestrator not initialised: no enabled model has its API key (set "
                      "%s)", ", ".join(sorted(set(settings.missing_keys().values()))))
            return None
        self.orchestrator = AIOrchestrator(
            self._orchestrator_config(settings),
            model_call_func=self._model_call_func or HttpCallFunc(settings),
            feature_flags=(self.live.feature_flags if self.live is not None
                           else settings.config.feature_flags),
            learning=self._learning(settings), validation_policy=policy, models=models)
        return self.orchestrator

    def _models(self, settings: Settings) -> list[AIModel]:
        """The configured models; without a `model_call_func` of the caller's, those
        whose API key variable is unset are disabled (never selected), and named."""
        if self._model_call_func is not None:
            return [AIModel.from_entry(entry) for entry in settings.config.models]
        missing = settings.missing_keys()
        if missing:
            log.warning("models not selected, their API key variable is unset: %s",
                        ", ".join(f"{name} ({variable})"
                                  for name, variable in sorted(missing.items())))
        return list(usable_models(settings))

    def _orchestrator_config(self, settings: Settings) -> OrchestratorConfig:
        values = settings.config.orchestrator.model_dump()
        if self.live is not None:
            values.update(self.live.orchestrator.model_dump())
        return OrchestratorConfig.model_validate(values)

    def _learning(self, settings: Settings) -> Learning:
        config = settings.config
        evidence = Evidence.from_settings(config.orchestrator.selection)
        kept = config.orchestrator.learning.samples_kept
        if run_blocking(lambda: reachable(config.redis)):
            store = RedisLearningStore(config.redis.keyspace, redis=config.redis,
                                       samples_kept=kept)
            return Learning(store, evidence)
        log.warning("Redis is not reachable: learned records stay in this process")
        return Learning(MemoryLearningStore(kept), evidence)

    async def fetch_data_with_collaboration(
        self, prompt: str, data_type: str | None = None,
        quality_threshold: float | None = None, cost_limit: float | None = None,
    ) -> dict[str, Any]:
        started = time.monotonic()
        await self._refresh_live()
        orchestrator = self.orchestrator or self.initialize_orchestrator()
        if orchestrator is None:
            return await self._legacy_or_error(
                prompt, data_type, quality_threshold, cost_limit,
                "the orchestrator is not available (switched off or not configured)")
        try:
            result = await orchestrator.process_request(
                prompt=prompt, quality_threshold=quality_threshold, cost_limit=cost_limit,
                data_type=data_type)
        except (ValueError, RuntimeError) as exc:
            return _legacy_dict(False, None, {"source": "orchestrator"}, str(exc))
        metadata = _metadata(result, data_type, time.monotonic() - started)
        if result.status != "ok" and self._legacy_fetch is not None and self._legacy_on():
            return await self._legacy_or_error(prompt, data_type, quality_threshold,
                                               cost_limit, result.reason)
        return _legacy_dict(result.success, result.data, metadata,
                            None if result.success else result.reason)

    async def _legacy_or_error(self, prompt: str, data_type: str | None,
                               quality_threshold: float | None, cost_limit: float | None,
                               why: str) -> dict[str, Any]:
        if self._legacy_fetch is None or not self._legacy_on():
            return _legacy_dict(False, None, {"source": "orchestrator"}, why)
        log.info("answering from the legacy system: %s", why)
        result = dict(await self._legacy_fetch(prompt=prompt, data_type=data_type,
                                               quality_threshold=quality_threshold,
                                               cost_limit=cost_limit))
        metadata = dict(result.get("metadata") or {})
        metadata.update({"source": "legacy", "fallback_reason": why})
        result["metadata"] = metadata
        return result

    def _legacy_on(self) -> bool:
        if self.live is not None:
            return bool(self.live.legacy_system.enabled)
        try:
            return self.settings.config.legacy_system.enabled
        except ConfigError:
            return True  # no configuration to say otherwise: the legacy system stays on

    # --- live flags ---------------------------------------------------------------------

    def update_config(self, changes: Mapping[str, Any], *,
                      reason: str | None = None) -> dict[str, Any]:
        from proxy.flags.snapshot import default_snapshot
        from proxy.flags.writer import update_flags_sync

        settings = self.settings
        snapshot = update_flags_sync(
            settings.config.redis, None, dict(changes),
            actor=self.actor, reason=reason or "MigrationAdapter.update_config",
            defaults=default_snapshot(settings.config))
        self._apply_live(snapshot)
        return snapshot.to_dict()

    def toggle_orchestrator(self, enabled: bool) -> dict[str, Any]:
        return self.update_config({"system": {"use_orchestrator": bool(enabled)}},
                                  reason=f"MigrationAdapter.toggle_orchestrator({enabled})")

    def rollback(self, reason: str | None = None) -> dict[str, Any]:
        """The kill switch: legacy only on every replica, percentages to 0."""
        from proxy.flags.snapshot import default_snapshot
        from proxy.flags.writer import rollback_sync

        settings = self.settings
        snapshot = rollback_sync(settings.config.redis, None,
                                 actor=self.actor, reason=reason or "MigrationAdapter.rollback",
                                 defaults=default_snapshot(settings.config))
        self._apply_live(snapshot)
        return snapshot.to_dict()

    def _apply_live(self, snapshot: Any) -> None:
        """Make this process follow the live flags (what it just wrote, or what it read),
        as the replicas do."""
        self.live = snapshot
        self._live_read_at = time.monotonic()
        orchestrator = self.orchestrator
        if orchestrator is None:
            return
        if not snapshot.system.use_orchestrator:
            self.orchestrator = None
            return
        orchestrator.configure(
            orchestrator.config.model_copy(update=snapshot.orchestrator.model_dump()),
            snapshot.feature_flags)

    def _read_live(self, settings: Settings) -> Any:
        return run_blocking(lambda: self._read_live_async(settings))

    async def _read_live_async(self, settings: Settings) -> Any:
        """The stored flag snapshot, or None (config.json applies) when there is none or
        Redis cannot be read."""
        from proxy.flags.store import StoreError
        from proxy.flags.writer import FlagWriter

        self._live_read_at = time.monotonic()
        writer = FlagWriter(settings.config.redis)
        try:
            snapshot, problem = await writer.read()
        except StoreError as exc:
            log.warning("live flags not readable (%s): using %s", exc, settings.source)
            return None
        finally:
            await writer.aclose()
        if problem:
            log.warning("live flag snapshot unusable (%s): using %s", problem, settings.source)
        return snapshot

    async def _refresh_live(self) -> None:
        """Follow flag changes made elsewhere (CLI, admin API, another process), reading
        the snapshot at most every `LIVE_REFRESH_SECONDS`."""
        if self.orchestrator is None or (
                time.monotonic() - self._live_read_at < LIVE_REFRESH_SECONDS):
            return
        snapshot = await self._read_live_async(self.settings)
        if snapshot is not None:
            self._apply_live(snapshot)

    async def aclose(self) -> None:
        if self.orchestrator is not None:
            await self.orchestrator.aclose()


class HttpCallFunc:
    """The adapter's `model_call_func`: the proxy's HTTP callers with the configured keys.
    A client (and pool) per call, because library users often run each request in a new
    event loop (`asyncio.run`), and a pool cannot outlive its loop."""

    def __init__(self, settings: Settings):
        self._settings = settings

    async def __call__(self, model: AIModel, request: ModelRequest) -> Reply:
        config = self._settings.config
        client = build_client(config.proxy.transport,
                              PoolLimits(4, 4, config.proxy.pool.keepalive_expiry))
        try:
            caller = HttpModelCaller(client, self._settings.model_keys,
                                     default_timeout=config.orchestrator.model_timeout_seconds)
            return await caller(model, request)
        finally:
            await client.aclose()


def _metadata(result: ProcessResult, data_type: str | None, elapsed: float) -> dict[str, Any]:
    return {"source": "orchestrator", "request_id": result.request_id,
            "task_type": result.task_type.value, "data_type": data_type,
            "status": result.status, "reason": result.reason,
            "contributing_models": result.contributing_models,
            "confidence": result.confidence, "confidence_scores": result.confidence_scores,
            "models_called": [call.model for call in result.calls],
            "cost_usd": result.cost, "latency_ms": round(elapsed * 1000, 1)}


def _legacy_dict(success: bool, data: Any, metadata: dict[str, Any],
                 error: str | None) -> dict[str, Any]:
    return {"success": success, "data": data, "metadata": metadata, "error": error}


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"python:{user}@{socket.gethostname()}"
