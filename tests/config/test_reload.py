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
from proxy.config.reload import ConfigWatcher, changed_sections, restart_needed
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


def test_restart_needed_names_keys_of_sections_that_apply_in_part() -> None:
    base = config()
    live = config(comparison={"max_text_chars": 500, "noise_sample_percent": 50,
                              "policy_file": "other.json", "max_json_nodes": 500})
    assert restart_needed(base, live) == []
    later = config(comparison={"report_bucket_seconds": 600, "max_text_chars": 500},
                   proxy={"listen": {"port": 9999}}, pricing={"m": {"input_per_1m": 1.0,
                                                                    "output_per_1m": 1.0}})
    assert restart_needed(base, later) == ["comparison.report_bucket_seconds", "pricing",
                                           "proxy"]


def test_the_judge_applies_live() -> None:
    judged = config(comparison={"judge": {"sample_percent": 50, "routes": ["/openai"],
                                          "max_concurrency": 9}})
    assert restart_needed(config(), judged) == []


def test_sighup_and_a_file_change_log_the_same(config_file: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    watcher = ConfigWatcher(load_config(str(config_file)), Reloads(), interval=0)
    messages = []
    for why, seconds in (("SIGHUP", 600), ("file changed", 1200)):
        write(config_file, {"redis": {"url": "memory://"},
                            "comparison": {"report_bucket_seconds": seconds,
                                           "max_text_chars": seconds * 10}})
        caplog.clear()
        with caplog.at_level(logging.INFO, "llm_shadow.config"):
            assert watcher.reload(why)
        messages.append([r.getMessage() for r in caplog.records
                         if r.levelno == logging.WARNING])
    assert messages[0] == messages[1] == [
        "config: changes to comparison.report_bucket_seconds take effect at the next restart"]


def test_comparison_settings_and_the_divergence_policy_apply_on_reload(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SIGHUP (or a file change) re-reads the divergence policy and applies the
    comparison bounds and noise share to the running comparer and shadow runner; an
    invalid policy file keeps the running policy."""
    from proxy.runtime import Runtime

    policy = tmp_path / "divergence.json"
    policy.write_text(json.dumps({"description": "first", "schema": 1}))
    path = tmp_path / "config.json"
    document = {"redis": {"url": "redis://127.0.0.1:9/0"},
                "flags": {"config_reload_interval": 0},
                "comparison": {"policy_file": "divergence.json"}}
    write(path, document)

    async def scenario() -> tuple[str, int, float, str]:
        async with Runtime(load_config(str(path), env={})) as runtime:
            assert runtime.comparer.policy.description == "first"
            policy.write_text(json.dumps({"description": "second", "schema": 1}))
            write(path, {**document, "comparison": {"policy_file": "divergence.json",
                                                    "max_text_chars": 500,
                                                    "noise_sample_percent": 42}})
            assert runtime.config_watcher.reload("SIGHUP")
            seen = (runtime.comparer.policy.description,
                    runtime.comparer.limits.max_text_chars, runtime.shadow.noise_percent)
            policy.write_text(json.dumps({"description": "third", "colour": "blue"}))
            with caplog.at_level(logging.ERROR):
                assert runtime.config_watcher.reload("SIGHUP")
            return (*seen, runtime.comparer.policy.description)

    assert run(scenario()) == ("second", 500, 42.0, "second")
    assert "divergence policy not reloaded, keeping the running one" in caplog.text
    assert "colour: unknown key" in caplog.text
