"""What the commands print besides their output: `--version`, `--log-level` and
`--log-format` before or after the subcommand (and from config.json or the environment
for `serve`), no INFO chatter from one-shot commands, and `audit` without Python repr."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from proxy.cli import logformat
from proxy.config.log import LogSection
from tests.fakes.cli import llm_shadow
from tests.fakes.proxyproc import ProxyProcess, routes_to
from tests.fakes.servers import RedisServer


def test_version(tmp_path: Path) -> None:
    result = llm_shadow("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("llm-shadow ")


@pytest.mark.parametrize(("command", "given", "section", "level"), [
    ("serve", None, None, "info"),
    ("serve", None, LogSection(level="error"), "error"),
    ("serve", "debug", LogSection(level="error"), "debug"),
    ("status", None, LogSection(level="debug"), "warning"),
    ("set", "info", None, "info"),
])
def test_level_for(command: str, given: str | None, section: LogSection | None,
                   level: str) -> None:
    assert logformat.level_for(command, given, section) == level


def test_json_lines_carry_the_traceback() -> None:
    record = logging.LogRecord("llm_shadow.x", logging.ERROR, __file__, 1, "boom %s",
                               ("here",), None)
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(logformat.formatter("json").format(record))
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "llm_shadow.x",
                                                                "boom here")
    assert "ValueError: bad" in line["exc_info"] and "time" in line


@pytest.mark.integration
def test_log_options_work_after_the_subcommand(tmp_path: Path,
                                               redis_server: RedisServer) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": redis_server.url,
                                            "key_prefix": "logformat"}}))
    quiet = llm_shadow("set", "--shadow", "1", "--config", str(config), cwd=tmp_path)
    assert quiet.returncode == 0 and "version 1 written by" not in quiet.stderr
    after = llm_shadow("set", "--shadow", "2", "--config", str(config), "--log-level", "info",
                       "--log-format", "json", cwd=tmp_path)
    before = llm_shadow("--log-level", "info", "--log-format", "json", "set", "--shadow", "3",
                        "--config", str(config), cwd=tmp_path)
    for result, version in ((after, 2), (before, 3)):
        assert result.returncode == 0, result.stderr
        logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        assert any(line["message"].startswith(f"flags: version {version} written")
                   and line["level"] == "INFO" for line in logs), result.stderr


@pytest.mark.integration
def test_status_and_audit_have_no_actor_and_audit_quotes_as_json(
        tmp_path: Path, redis_server: RedisServer) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": redis_server.url,
                                            "key_prefix": "logformat-audit"}}))
    for command in ("status", "audit"):
        refused = llm_shadow(command, "--actor", "alice", "--config", str(config),
                             cwd=tmp_path)
        assert refused.returncode == 2 and "--actor" in refused.stderr
    assert llm_shadow("rollback", "--reason", "it's \"broken\"", "--actor", "alice",
                      "--config", str(config), cwd=tmp_path).returncode == 0
    audit = llm_shadow("audit", "--config", str(config), cwd=tmp_path).stdout
    assert 'alice  reason: "it\'s \\"broken\\""  changes: {"kill":true' in audit


@pytest.mark.integration
@pytest.mark.parametrize("how", ["flag", "environment", "config"])
def test_serve_logs_json_lines(how: str, upstream_url: str) -> None:
    config: dict[str, object] = {"proxy": {"routes": routes_to(upstream_url)},
                                 "redis": {"url": "redis://127.0.0.1:9/0"}}
    if how == "config":
        config["log"] = {"format": "json"}
    proxy = ProxyProcess(config, env={"LLM_SHADOW_LOG_FORMAT": "json"} if how == "environment"
                         else None, args=["--log-format", "json"] if how == "flag" else [])
    with proxy:
        pass
    lines = proxy.log().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line, warnings included
    assert any(line["message"].startswith("proxy listening on") for line in parsed)
    assert {"time", "level", "logger", "message"} <= set(parsed[0])
