"""`llm-shadow check-config` checks what `serve` would load, the way `serve` loads it:
every policy file (an unknown key fails both, naming the file and the key), which
policies are built-in, the `OTEL_*` variables, and models without their API key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from proxy.config import load_config
from proxy.config.policyfiles import check
from tests.fakes.cli import llm_shadow
from tests.fakes.proxyproc import REPO, ProxyProcess, routes_to
from tests.fakes.servers import wait_for

MODELS = [{"name": "qwen-max", "api_key_env": "TEST_DASHSCOPE_KEY"},
          {"name": "deepseek-chat", "api_key_env": "TEST_DEEPSEEK_KEY"},
          {"name": "local", "base_url": "http://127.0.0.1:9/v1"}]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """config.json with the repository's policies/ beside it."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    (tmp_path / "config.json").write_text(json.dumps({"models": MODELS}))
    return tmp_path


def test_ok_lists_every_policy_file(folder: Path) -> None:
    result = llm_shadow("check-config", cwd=folder,
                        env={"TEST_DASHSCOPE_KEY": "k1", "TEST_DEEPSEEK_KEY": "k2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "config.json: OK (2 routes, 3 models)"
    for name in ("divergence", "validation", "ramp", "judge"):
        assert f"  {name} policy: {folder / 'policies' / name}.json" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("name", ["divergence", "validation", "ramp", "judge"])
def test_an_unknown_key_in_a_policy_fails_naming_file_and_key(folder: Path,
                                                              name: str) -> None:
    path = folder / "policies" / f"{name}.json"
    data = json.loads(path.read_text())
    data["colour"] = "blue"
    path.write_text(json.dumps(data))
    result = llm_shadow("check-config", cwd=folder)
    assert result.returncode == 2
    assert str(path) in result.stderr and "colour" in result.stderr
    assert "OK" not in result.stdout


@pytest.mark.integration
def test_serve_refuses_the_same_divergence_policy(folder: Path, upstream_url: str) -> None:
    path = folder / "policies" / "divergence.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "colour": "blue"}))
    proxy = ProxyProcess({"proxy": {"routes": routes_to(upstream_url)},
                          "comparison": {"policy_file": str(path)}})
    proxy.start(wait=False)
    assert proxy.process is not None and proxy.process.wait(timeout=60) == 2
    assert f"{path}: colour: unknown key" in proxy.log()


def test_missing_policies_are_built_in_and_said_so(tmp_path: Path) -> None:
    result = llm_shadow("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "no config file: built-in defaults: OK (2 routes, 0 models)"
    assert f"  divergence policy: built-in ({tmp_path}/policies/divergence.json not found)" \
        in lines
    assert f"  validation policy: built-in ({tmp_path}/policies/validation.json not found)" \
        in lines
    assert any(line.startswith("  ramp policy: none") for line in lines)
    assert f"  judge policy: none ({tmp_path}/policies/judge.json not found; the judge " \
        "cannot run without its prompt)" in lines


def test_an_enabled_judge_without_its_policy_fails_naming_the_key(tmp_path: Path) -> None:
    config = {"models": [{"name": "grader"}],
              "comparison": {"judge": {"enabled": True, "model": "grader",
                                       "routes": ["/openai"]}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = llm_shadow("check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path}/policies/judge.json: not found (comparison.judge.policy_file)" \
        in result.stderr


def test_models_without_their_api_key_are_named(folder: Path) -> None:
    result = llm_shadow("check-config", cwd=folder, env={"TEST_DASHSCOPE_KEY": "k1"})
    assert result.returncode == 0
    assert result.stderr.strip() == ("llm-shadow: warning: models not selected, their API key "
                                     "variable is unset: deepseek-chat (TEST_DEEPSEEK_KEY)")


def test_an_otel_typo_fails_as_serve_would(folder: Path) -> None:
    result = llm_shadow("check-config", cwd=folder, env={"OTEL_TRACES_EXPORTER": "jaegr"})
    assert result.returncode == 2 and "OTEL_TRACES_EXPORTER" in result.stderr


def test_check_reports_each_file_once_without_logging(folder: Path) -> None:
    results = check(load_config(str(folder / "config.json"), env={}))
    assert [(file.name, file.found, error) for file, error in results] == [
        ("divergence", True, None), ("validation", True, None), ("ramp", True, None),
        ("judge", True, None)]


@pytest.mark.integration
def test_serve_names_keyless_models_in_its_log_and_on_readyz(upstream_url: str) -> None:
    config = {"proxy": {"routes": routes_to(upstream_url)},
              "redis": {"url": "redis://127.0.0.1:9/0"}, "models": MODELS}
    with ProxyProcess(config, env={"TEST_DASHSCOPE_KEY": "sk-secret-dashscope"}) as proxy:
        ready = httpx.get(proxy.admin_url + "/readyz")
        assert ready.status_code == 200
        assert ready.json()["models_without_key"] == {"deepseek-chat": "TEST_DEEPSEEK_KEY"}
        assert "deepseek-chat" in ready.json()["warnings"][0]
        assert "models not selected, their API key variable is unset: deepseek-chat " \
               "(TEST_DEEPSEEK_KEY)" in proxy.log()
        reloaded = json.loads(proxy.config_path.read_text())
        reloaded["models"].append({"name": "extra", "api_key_env": "TEST_EXTRA_KEY"})
        proxy.config_path.write_text(json.dumps(reloaded))  # said again on reload
        wait_for(lambda: "extra (TEST_EXTRA_KEY)" in proxy.log(), message="reload logged")
        wait_for(lambda: "extra" in httpx.get(proxy.admin_url + "/readyz").json()[
            "models_without_key"], message="/readyz after the reload")
    assert "sk-secret-dashscope" not in proxy.log()


def test_a_judge_model_without_its_key_is_named(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    config = {"models": [{"name": "grader", "api_key_env": "TEST_JUDGE_KEY", "enabled": False}],
              "comparison": {"judge": {"enabled": True, "model": "grader",
                                       "routes": ["/openai"]}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = llm_shadow("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ("llm-shadow: warning: the judge does not run, its "
                                     "model's API key variable is unset: grader "
                                     "(TEST_JUDGE_KEY)")
    assert llm_shadow("check-config", cwd=tmp_path,
                      env={"TEST_JUDGE_KEY": "k"}).stderr == ""
