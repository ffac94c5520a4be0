"""Reading configuration: file, then `LLM_SHADOW_*` environment, then CLI overrides.

Layer: pure core, plus the only file and environment reads of the configuration. Errors
name the file and the dotted key (`config.json: proxy.routes[0].upstream: ...`) so an
operator can fix them without reading code.

Obsolete keys are translated before validation, with one warning per process:
`flags.store: "memory"` (the old in-process flag store) becomes `redis.url: "memory://"`,
which runs every store in this process, as that setting did; `flags.store: "redis"` (the
old default) is dropped. Any other value is an error that says what to write.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from proxy.config.model import Config
from proxy.config.proxy import MEMORY_URL

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("llm_shadow.config")

ENV_PREFIX = "LLM_SHADOW_"
DEFAULT_FILE = "config.json"
BUILT_IN = "<built-in defaults>"

# Environment variables that override one configuration key each (dotted path).
ENV_OVERRIDES: dict[str, str] = {
    "LLM_SHADOW_REDIS_URL": "redis.url",
    "LLM_SHADOW_REDIS_SENTINEL_PASSWORD": "redis.sentinel.password",
    "LLM_SHADOW_HOST": "proxy.listen.host",
    "LLM_SHADOW_PORT": "proxy.listen.port",
    "LLM_SHADOW_ADMIN_HOST": "proxy.admin.host",
    "LLM_SHADOW_ADMIN_PORT": "proxy.admin.port",
    "LLM_SHADOW_ORCHESTRATOR_ENDPOINT": "orchestrator.endpoint",
    "LLM_SHADOW_REPLICA_ID": "flags.replica_id",
    "LLM_SHADOW_TRACES_FILE": "telemetry.traces_file",
    "LLM_SHADOW_LOG_LEVEL": "log.level",
    "LLM_SHADOW_LOG_FORMAT": "log.format",
}

TRUTHY = {"1", "true", "yes", "on"}


class ConfigError(Exception):
    """A configuration that cannot be used; the message is meant for the operator."""


@dataclass(frozen=True)
class Settings:
    """A validated configuration plus what came with it from outside the file.

    Secrets are kept out of `Config` so that dumping or logging the configuration can
    never print one.
    """

    config: Config
    source: str
    base_dir: Path
    admin_token: SecretStr | None = None
    force_legacy: bool = False
    model_keys: Mapping[str, SecretStr] = field(default_factory=dict)
    # Dotted keys that an `LLM_SHADOW_*` variable set, and which variable (for messages
    # that say where a value came from).
    from_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_file(self) -> bool:
        """False when no configuration file was found: built-in defaults only."""
        return self.source != BUILT_IN

    def resolve(self, relative: str) -> Path:
        """A path from the configuration, relative to the configuration file's folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.base_dir / path

    def missing_keys(self, *, disabled_too: bool = False) -> dict[str, str]:
        """Enabled models (all with `disabled_too`: the judge may call a disabled one)
        whose `api_key_env` variable is unset or empty: model name → variable name. Such
        a model is never called (its calls would go out without credentials)."""
        return {model.name: model.api_key_env for model in self.config.models
                if (model.enabled or disabled_too) and model.api_key_env
                and model.name not in self.model_keys}


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("LLM_SHADOW_CONFIG"):
        return Path(env["LLM_SHADOW_CONFIG"])
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


def load_config(
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and validate; raise `ConfigError` naming the file and key on any problem."""
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    if file is None:
        data: dict[str, Any] = {}
        source, base_dir = BUILT_IN, Path.cwd()
    else:
        data = read_json_file(file)
        source, base_dir = str(file), file.resolve().parent
    from_env = {}
    for variable, dotted in ENV_OVERRIDES.items():
        if env.get(variable):
            set_dotted(data, dotted, env[variable])
            from_env[dotted] = variable
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, dotted, value)
    config = parse_config(data, source)
    return Settings(
        config=config,
        source=source,
        base_dir=base_dir,
        admin_token=_secret(env.get("LLM_SHADOW_ADMIN_TOKEN")),
        force_legacy=env.get("LLM_SHADOW_FORCE_LEGACY", "").strip().lower() in TRUTHY,
        model_keys=_model_keys(config, env),
        from_env=from_env,
    )


def read_json_file(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a JSON object")
    return data


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> Config:
    return validated(Config, _without_obsolete(data, source), source)


def validated(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """`data` as a `model` (the configuration, or a policy file); a mistake raises
    `ConfigError` naming `source` and every dotted key that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


_warned: set[str] = set()


def _without_obsolete(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """Translate `flags.store` (see the module docstring)."""
    flags = data.get("flags")
    if not isinstance(flags, Mapping) or "store" not in flags:
        return data
    store = flags["store"]
    if store not in ("memory", "redis"):
        raise ConfigError(f"{source}: flags.store: removed: Redis holds the flags; for one "
                          f"process without Redis write \"redis\": {{\"url\": "
                          f"\"{MEMORY_URL}\"}} (got {_short(store)})")
    out = dict(data)
    out["flags"] = {key: value for key, value in flags.items() if key != "store"}
    if store == "memory":
        redis = out.get("redis")
        out["redis"] = {**(redis if isinstance(redis, Mapping) else {}), "url": MEMORY_URL}
        _warn_once(f"{source}: flags.store \"memory\" is obsolete: it now means "
                   f"\"redis\": {{\"url\": \"{MEMORY_URL}\"}} (every store in this "
                   f"process); write that instead")
    else:
        _warn_once(f"{source}: flags.store is obsolete (Redis is the only flag store); "
                   f"remove it")
    return out


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = dotted_location(error["loc"]) or "(top level)"
        got = ""
        if error["type"] not in ("missing", "extra_forbidden") and "input" in error:
            got = f" (got {_short(error['input'])})"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        lines.append(f"{source}: {where}: {message}{got}")
    return "\n".join(lines)


def dotted_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[leaf] = value


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _short(value: Any) -> str:
    """The offending value for an error message, never with URL credentials in it."""
    text = _URL_CREDENTIALS.sub("***@", repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None


def _model_keys(config: Config, env: Mapping[str, str]) -> dict[str, SecretStr]:
    keys = {}
    for model in config.models:
        if model.api_key_env and env.get(model.api_key_env):
            keys[model.name] = SecretStr(env[model.api_key_env])
    return keys
