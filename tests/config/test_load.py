"""Configuration: validated once, errors name the file and the dotted key, environment
and CLI override in the documented order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import ConfigError, load_config
from tests.fakes.servers import clean_env

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_the_shipped_config_json_is_valid() -> None:
    settings = load_config(str(REPO / "config.json"), env={})
    prefixes = [route.prefix for route in settings.config.proxy.routes]
    assert prefixes == ["/openai", "/anthropic"]
    assert settings.config.proxy.listen.port == 8787
    assert settings.config.proxy.admin.port == 8788
    assert settings.config.redis.url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("data,expected", [
    ({"proxy": {"routes": [{"prefix": "openai", "upstream": "https://x"}]}},
     "proxy.routes[0].prefix: must start with '/'"),
    ({"proxy": {"routes": [{"prefix": "/o", "upstream": "ftp://x"}]}},
     "proxy.routes[0].upstream: must be an absolute http(s) URL"),
    ({"proxy": {"routes": [{"prefix": "/o", "upstream": "https://x",
                            "timeouts": {"read": -1}}]}},
     "proxy.routes[0].timeouts.read: Input should be greater than 0"),
    ({"proxy": {"listen": {"prot": 1}}}, "proxy.listen.prot: unknown key"),
    ({"orchestrator": {"default_quality_threshold": 2}},
     "orchestrator.default_quality_threshold: Input should be less than or equal to 1"),
    ({"models": [{"name": "a"}, {"name": "a"}]}, "models: name 'a' appears more than once"),
    ({"redis": {"url": "http://user:hunter2@host"}}, "redis.url: must start with redis://"),
    ({"divert": {"first_byte_timeout_seconds": 60}},
     "divert: first_byte_timeout_seconds was replaced by fallback_after_seconds"),
    ({"divert": {"fallback_after_seconds": 0}},
     "divert.fallback_after_seconds: Input should be greater than 0"),
    ({"shadow": {"shed_lag_ms": -1}},
     "shadow.shed_lag_ms: Input should be greater than or equal to 0"),
    ({"comparison": {"keep_examples": 500}},
     "comparison.keep_examples: Input should be less than or equal to 100"),
    ({"comparison": {"keep_examples": -1}},
     "comparison.keep_examples: Input should be greater than or equal to 0"),
    ({"comparison": {"report_bucket_seconds": 300, "report_fine_bucket_seconds": 600}},
     "report_fine_bucket_seconds (600) must be shorter than report_bucket_seconds (300), "
     "or 0 for none"),
    ({"comparison": {"report_fine_bucket_seconds": 1, "report_fine_retention_minutes": 600}},
     "36000 fine buckets per route (at most 5000)"),
])
def test_errors_name_the_file_and_the_key(tmp_path: Path, data: object, expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    message = str(caught.value)
    assert message.startswith(str(path) + ": ")
    assert expected in message
    assert "hunter2" not in message


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "proxy": {,\n}')
    with pytest.raises(ConfigError, match=r"config.json: invalid JSON at line 2 column"):
        load_config(str(path), env={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "absent.json"), env={})


def test_environment_overrides_the_file_and_cli_overrides_both(tmp_path: Path) -> None:
    path = write(tmp_path, {"redis": {"url": "redis://file:6379/0"},
                            "proxy": {"listen": {"port": 9000}}})
    env = {"LLM_SHADOW_CONFIG": str(path), "LLM_SHADOW_REDIS_URL": "redis://env:6379/1",
           "LLM_SHADOW_PORT": "9100", "LLM_SHADOW_ADMIN_TOKEN": "s3cr3t-admin",
           "LLM_SHADOW_FORCE_LEGACY": "1"}
    settings = load_config(None, env=env, overrides={"proxy.listen.port": 9200})
    assert settings.source == str(path)
    assert settings.config.redis.url == "redis://env:6379/1"
    assert settings.config.proxy.listen.port == 9200
    assert settings.force_legacy is True
    assert settings.admin_token is not None
    assert "s3cr3t-admin" not in repr(settings)


def test_model_keys_come_from_the_named_variables(tmp_path: Path) -> None:
    path = write(tmp_path, {"models": [{"name": "m1", "api_key_env": "M1_KEY"},
                                       {"name": "m2", "api_key_env": "M2_KEY"}]})
    settings = load_config(str(path), env={"M1_KEY": "secret-1"})
    assert settings.model_keys["m1"].get_secret_value() == "secret-1"
    assert "m2" not in settings.model_keys


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_cli_exits_2_with_the_message(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, {"proxy": {"routes": [{"prefix": "/o", "upstream": "nope"}]}})
    result = subprocess.run([sys.executable, "-m", "proxy", command, "--config", str(path)],
                            capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode == 2
    assert f"{path}: proxy.routes[0].upstream: must be an absolute http(s) URL" in result.stderr


def test_check_config_accepts_the_shipped_file() -> None:
    result = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config",
                             str(REPO / "config.json")], capture_output=True, text=True,
                            env=clean_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
