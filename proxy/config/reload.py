"""Reloading `config.json` while running: on SIGHUP and when the file changes.

Layer: composition around the config loader (this module, like `proxy.config.load`, may
read the file and the environment). Why it exists: the migration guide's rollback
"edit config.json: `system.use_orchestrator: false`" must take effect without a restart,
on every replica that mounts the file (a ConfigMap update swaps a symlink, which changes
the inode we watch).

- A change is detected by polling `stat()` (mtime, size, inode) every
  `flags.config_reload_interval` seconds (0 disables it; SIGHUP still works). No
  inotify dependency, and it works on every volume type.
- The new file is validated exactly like at start-up. An invalid edit is refused with
  the loader's message (file and dotted key) logged at ERROR, and the running
  configuration stays as it was: a typo must never become a rollback or an outage.
- What applies live: the flags' local layer and defaults (`system`, `feature_flags`,
  `legacy_system`, `traffic`; see `proxy.flags.view`), the orchestrator's settings,
  models and keys, and the comparison's divergence policy (its file is re-read on every
  reload, so SIGHUP after editing `policies/divergence.json` applies it), text and JSON
  bounds and noise share, and the whole `comparison.judge` section with its rubric
  (so the judge can be switched off, or a route withdrawn, without a restart).
  Everything else that changed (listeners, routes, pools,
  `comparison.inject_stream_usage_routes`, `keep_examples` and `report_*`, telemetry,
  log, ...) is named in one warning, the same whether the reload came from SIGHUP or a
  file change: it takes effect at the next restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from proxy.config.load import ConfigError, Settings, load_config
from proxy.config.model import Config

log = logging.getLogger("llm_shadow.config")

# Sections a reload applies at once: the flag view's local layer, and the orchestrator's
# settings, models and keys (proxy.orchestrator.pipeline.Pipeline.apply_settings).
LIVE_SECTIONS = frozenset({"system", "feature_flags", "legacy_system", "traffic",
                           "orchestrator", "models"})
# Keys of sections that apply live only in part (proxy.runtime.Runtime._apply_comparison).
LIVE_KEYS = frozenset({"comparison.policy_file", "comparison.max_text_chars",
                       "comparison.max_json_nodes", "comparison.noise_sample_percent",
                       "comparison.judge"})
PARTLY_LIVE = frozenset(key.split(".")[0] for key in LIVE_KEYS)

Fingerprint = tuple[int, int, int]


class ConfigWatcher:
    def __init__(self, settings: Settings, on_reload: Callable[[Settings], None], *,
                 interval: float, env: Mapping[str, str] | None = None):
        self.path = Path(settings.source) if Path(settings.source).is_file() else None
        self.on_reload = on_reload
        self.interval = interval
        self.env = env
        self.reloads = 0
        self.refused = 0
        self._baseline = self._file_config() or settings.config
        self._fingerprint = self._stat()
        self._task: asyncio.Task[None] | None = None
        self._sighup = False

    async def start(self) -> None:
        if self.path is None:
            return
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
            self._sighup = True
        except (ValueError, RuntimeError, NotImplementedError):
            log.debug("config: SIGHUP reload unavailable here (not the main thread)")
        if self.interval > 0:
            self._task = loop.create_task(self._watch(), name="config-watch")

    async def aclose(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reload(self, why: str = "request") -> bool:
        """Load and validate the file; apply it, or keep the running one and say why."""
        if self.path is None:
            return False
        self._fingerprint = self._stat()
        try:
            settings = load_config(str(self.path), env=self.env)
        except ConfigError as exc:
            self.refused += 1
            log.error("config: reload (%s) refused, keeping the running configuration:\n%s",
                      why, exc)
            return False
        self._report_restart_needed(settings.config)
        self._baseline = settings.config
        self.reloads += 1
        self.on_reload(settings)
        log.info("config: reloaded %s (%s)", self.path, why)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._stat() != self._fingerprint:
                self.reload("file changed")

    def _stat(self) -> Fingerprint | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _file_config(self) -> Config | None:
        if self.path is None:
            return None
        try:
            return load_config(str(self.path), env=self.env).config
        except ConfigError:
            return None

    def _report_restart_needed(self, new: Config) -> None:
        pending = restart_needed(self._baseline, new)
        if pending:
            log.warning("config: changes to %s take effect at the next restart",
                        ", ".join(pending))


def changed_sections(old: Config, new: Config) -> set[str]:
    before: dict[str, Any] = old.model_dump()
    after: dict[str, Any] = new.model_dump()
    return {key for key in after if before.get(key) != after.get(key)}


def restart_needed(old: Config, new: Config) -> list[str]:
    """What changed that a reload does not apply: whole sections, or `section.key` for a
    section that applies live in part."""
    before: dict[str, Any] = old.model_dump()
    after: dict[str, Any] = new.model_dump()
    pending = []
    for section in sorted(changed_sections(old, new) - LIVE_SECTIONS):
        if section not in PARTLY_LIVE:
            pending.append(section)
            continue
        keys = sorted(key for key in after[section]
                      if before[section].get(key) != after[section].get(key))
        pending += [f"{section}.{key}" for key in keys if f"{section}.{key}" not in LIVE_KEYS]
    return pending
