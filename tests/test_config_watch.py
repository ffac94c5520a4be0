"""Reloading config.json while running: SIGHUP, file change, invalid edits refused, and
the guide's "use_orchestrator: false" rollback taking effect without a restart."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from proxy.config import Settings, load_config
from proxy.config.reload import ConfigWatcher, changed_sections
from proxy.decision import decide
from proxy.flags.service import FlagService
from tests.fakes.servers import async_wait_for
from tests.flags.helpers import config, run

CHAT = "/v1/chat/completions"


def write(path: Path, data: dict[str, Any]) -> None:
    # Write-then-rename, as editors and ConfigMap updates do.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    write(path, {"redis": {"url": "memory://"}, "traffic": {"divert_percent": 100}})
    return path


class Reloads:
    def __init__(self) -> None:
        self.seen: list[Settings] = []

    def __call__(self, settings: Settings) -> None:
        self.seen.append(settings)


def test_valid_edit_is_applied(config_file: Path) -> None:
    reloads = Reloads()
    watcher = ConfigWatcher(load_config(str(config_file)), reloads, interval=0)
    write(config_file, {"redis": {"url": "memory://"}, "system": {"use_orchestrator": False}})
    assert watcher.reload("test")
    assert reloads.seen[-1].config.system.use_orchestrator is False


def test_invalid_edit_is_refused_and_the_running_config_kept(
        config_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    reloads = Reloads()
    watcher = ConfigWatcher(load_config(str(config_file)), reloads, interval=0)
    for text in ("{ not json", json.dumps({"system": {"use_orchestrator": "nah"}}),
                 json.dumps({"sytem": {}})):
        config_file.write_text(text)
        with caplog.at_level(logging.ERROR, "llm_shadow.config"):
            assert not watcher.reload("test")
    assert reloads.seen == [] and watcher.refused == 3
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("system.use_orchestrator" in m for m in messages)
    assert all("keeping the running configuration" in m for m in messages)


def test_sections_that_need_a_restart_are_named(config_file: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    watcher = ConfigWatcher(load_config(str(config_file)), Reloads(), interval=0)
    write(config_file, {"redis": {"url": "memory://"}, "proxy": {"listen": {"port": 9999}}})
    with caplog.at_level(logging.WARNING, "llm_shadow.config"):
        assert watcher.reload("test")
    assert any("proxy" in r.getMessage() and "next restart" in r.getMessage()
               for r in caplog.records)


def test_changed_sections() -> None:
    assert changed_sections(config(), config(system={"use_orchestrator": False})) == {"system"}
    assert changed_sections(config(), config()) == set()


def test_file_change_is_detected(config_file: Path) -> None:
    reloads = Reloads()

    async def scenario() -> None:
        watcher = ConfigWatcher(load_config(str(config_file)), reloads, interval=0.02)
        await watcher.start()
        write(config_file, {"redis": {"url": "memory://"}, "traffic": {"shadow_percent": 5}})
        await async_wait_for(lambda: watcher.reloads == 1, message="reload on change")
        await watcher.aclose()

    run(scenario())
    assert reloads.seen[0].config.traffic.shadow_percent == 5


def test_sighup_reloads(config_file: Path) -> None:
    reloads = Reloads()

    async def scenario() -> None:
        watcher = ConfigWatcher(load_config(str(config_file)), reloads, interval=0)
        await watcher.start()
        assert watcher._sighup, "pytest runs tests in the main thread"
        os.kill(os.getpid(), signal.SIGHUP)
        await async_wait_for(lambda: watcher.reloads == 1, message="reload on SIGHUP")
        await watcher.aclose()

    run(scenario())


def test_no_file_means_nothing_to_watch() -> None:
    settings = Settings(config=config(), source="<built-in defaults>", base_dir=Path("."))
    watcher = ConfigWatcher(settings, Reloads(), interval=0.01)
    run(watcher.start())
    assert watcher.path is None and not watcher.reload()


def test_use_orchestrator_false_in_config_json_rolls_back_without_restart(
        config_file: Path) -> None:
    """The guide's rollback option 3, end to end through the flag service."""
    async def scenario() -> None:
        settings = load_config(str(config_file))
        service = FlagService(settings)
        watcher = ConfigWatcher(settings, service.apply_settings, interval=0.02)
        await service.start()
        await watcher.start()
        flags = service.watcher
        await async_wait_for(lambda: flags.current.state == "ready", message="ready")
        assert decide(flags.current, "/openai", CHAT, "k", (CHAT,)).action == "divert"
        write(config_file, {"redis": {"url": "memory://"}, "traffic": {"divert_percent": 100},
                            "system": {"use_orchestrator": False}})
        await async_wait_for(
            lambda: decide(flags.current, "/openai", CHAT, "k", (CHAT,)).reason
            == "use_orchestrator_off", message="rollback via config.json")
        config_file.write_text("{ broken")  # a bad edit later does not undo the rollback
        await async_wait_for(lambda: watcher.refused >= 1, message="refused")
        assert flags.current.snapshot.system.use_orchestrator is False
        await watcher.aclose()
        await service.aclose()

    run(scenario())
