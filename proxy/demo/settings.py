"""The demo's configuration: the proxy pointed at the fakes, a short ramp schedule, and
the policies beside it, written to the demo's folder and loaded like any config.json.

Layer: composition (builds JSON documents, writes them, and loads them with
`proxy.config.load_config`, the one loader). Writing the files rather than building
objects in memory keeps the demo on the product's own path (validation, relative
policy paths) and leaves a configuration a newcomer can read afterwards: with a shared
Redis, `llm-shadow report --config <folder>/config.json` reads the run's report.

The models' API keys are random per run; the loader reads them from the environment
variables each model names in `api_key_env`, here a mapping passed to the loader rather
than this process's environment (nothing else in the process needs to see them).

Guardrail limits are looser than `policies/ramp.json`'s because a step here has about
30 comparisons, not thousands: the confidence intervals are wide, and the limits must
let a healthy orchestrator through while a broken one still clearly breaches them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from proxy.config import Settings, load_config
from proxy.demo.storage import Store

ROUTE = "/openai"
LEGACY_MODEL = "gpt-4o-mini"
MIN_COMPARED = 30  # the divergence guardrail's minimum (proxy.comparison.noise.MIN_SAMPLES)
EXAMPLES_KEPT = 4  # divergent pairs of each label the report shows side by side


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A fake orchestrator model: its name, provider, prices (USD per 1M tokens in/out)
    and the latency range its fake answers in."""

    name: str
    provider: str
    input_per_1m: float
    output_per_1m: float
    latency: tuple[float, float]

    @property
    def key_env(self) -> str:
        return "LLM_SHADOW_DEMO_" + self.name.upper().replace("-", "_") + "_KEY"


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("qwen-max", "Alibaba", 1.6, 6.4, (0.10, 0.25)),
    ModelSpec("deepseek-chat", "DeepSeek", 0.27, 1.1, (0.15, 0.35)),
    ModelSpec("mistral-large", "Mistral", 2.0, 6.0, (0.08, 0.20)),
)


@dataclass(frozen=True, slots=True)
class Ports:
    legacy: str
    models: Mapping[str, str]  # model name -> base URL
    proxy: int
    admin: int


@dataclass(frozen=True, slots=True)
class Tuning:
    step_seconds: float
    noise_percent: float
    seed: int


STEPS: tuple[tuple[str, float, float], ...] = (  # (name, shadow %, divert %)
    ("shadow 10%", 10, 0),
    ("shadow 50%", 50, 0),
    ("shadow 100%", 100, 0),
    ("divert 25%", 100, 25),
    ("divert 50%", 100, 50),
)


def config_document(ports: Ports, store: Store, tuning: Tuning,
                    traces_file: Path | None = None) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "models": [{"name": m.name, "provider": m.provider,
                    "input_cost_per_1m_tokens": m.input_per_1m,
                    "output_cost_per_1m_tokens": m.output_per_1m,
                    "avg_response_time": round(sum(m.latency) / 2, 3),
                    "base_url": ports.models[m.name], "api_key_env": m.key_env}
                   for m in MODELS],
        "orchestrator": {"model_timeout_seconds": 10.0,
                         "validation_policy_file": "policies/validation.json",
                         "selection": {"seed": tuning.seed},
                         "learning": {"refresh_seconds": 1.0}},
        "proxy": {"listen": {"host": "127.0.0.1", "port": ports.proxy},
                  "admin": {"host": "127.0.0.1", "port": ports.admin},
                  "routes": [{"prefix": ROUTE, "upstream": ports.legacy, "provider": "openai",
                              "timeouts": {"connect": 2.0, "read": 30.0, "write": 10.0,
                                           "pool": 5.0}}],
                  "graceful_shutdown_seconds": 5.0},
        # A URL with a password is not written to the file (the loader gets it from the
        # mapping standing in for the environment, as LLM_SHADOW_REDIS_URL).
        "redis": {"key_prefix": store.prefix,
                  **({} if "@" in store.url else {"url": store.url})},
        "flags": {"replica_id": "demo", "config_reload_interval": 0},
        "shadow": {"budget_usd_per_hour": 100.0, "timeout_seconds": 20.0},
        "divert": {"fallback_after_seconds": 20.0},
        "pricing": {LEGACY_MODEL: {"input_per_1m": 0.15, "output_per_1m": 0.6,
                                   "cached_input_per_1m": 0.075}},
        "comparison": {"noise_sample_percent": tuning.noise_percent,
                       "policy_file": "policies/divergence.json",
                       "report_bucket_seconds": 60, "report_retention_hours": 1,
                       "report_fine_bucket_seconds": 5, "report_fine_retention_minutes": 60,
                       "keep_examples": EXAMPLES_KEPT},
        # The fakes' questions and answers are made up: content capture shows what it
        # adds (messages on the spans, the evidence, and the report's divergent pairs).
        "telemetry": {"capture_message_content": True,
                      **({"traces_file": str(traces_file)} if traces_file else {})},
    }


def last_step_seconds(step_seconds: float) -> float:
    """The last step holds longer: a regression injected there (halfway through a normal
    step) must have time to show in the numbers before the step could complete; a slow
    orchestrator shows only once its late answers arrive."""
    return max(3 * step_seconds, 10.0)


def ramp_document(tuning: Tuning) -> dict[str, Any]:
    step = tuning.step_seconds
    durations = [step] * (len(STEPS) - 1) + [last_step_seconds(step)]
    return {
        "description": "The demo's ramp: five short steps on /openai, about 30 comparisons "
                       "each; limits loose enough for so few samples (see policies/ramp.json "
                       "in the repository for production values).",
        "schema": 1,
        "route": ROUTE,
        "evaluation_interval_seconds": 0.5,
        "lock_ttl_seconds": 5.0,
        "noise_window_seconds": 600,
        "on_rollback": "kill",
        "guardrails": {
            "divergence": {"max_excess": 0.25, "max_excess_major": 0.2,
                           "min_samples": MIN_COMPARED},
            "error_rate": {"max": 0.2, "min_requests": MIN_COMPARED},
            "fallback_rate": {"max": 0.2, "min_requests": 20},
            "latency_p95": {"max_delta_ms": 2000, "min_samples": MIN_COMPARED},
            "cost_per_request": {"max_usd": 0.01, "min_requests": MIN_COMPARED},
        },
        "steps": [{"name": name, "shadow_percent": shadow, "divert_percent": divert,
                   "min_duration_seconds": duration, "min_compared": MIN_COMPARED}
                  for (name, shadow, divert), duration in zip(STEPS, durations, strict=True)],
    }


DIVERGENCE_POLICY: dict[str, Any] = {
    "description": "The built-in defaults (see policies/divergence.json in the repository).",
    "schema": 1,
}

VALIDATION_POLICY: dict[str, Any] = {
    "version": 1,
    "description": "A subset of policies/validation.json in the repository.",
    "rules": [
        {"name": "non-empty", "applies_to": {"output": "text"},
         "checks": {"min_length": 1, "max_length": 200000}},
        {"name": "json-when-asked", "applies_to": {"output": "json"},
         "checks": {"valid_json": True, "request_schema": True, "max_length": 200000}},
    ],
}


@dataclass(frozen=True, slots=True)
class DemoSettings:
    settings: Settings
    folder: Path
    config_path: Path
    ramp_path: Path


def model_keys() -> dict[str, str]:
    """A fresh API key per fake model (model name -> key)."""
    return {m.name: "sk-demo-" + secrets.token_hex(16) for m in MODELS}


def write_settings(folder: Path, ports: Ports, store: Store, tuning: Tuning,
                   keys: Mapping[str, str], *, traces_file: Path | None = None) -> DemoSettings:
    """Write config.json and policies/ into `folder` and load them; `keys` are the
    models' API keys, handed to the loader as their `api_key_env` variables."""
    policies = folder / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.json"
    ramp_path = policies / "ramp.json"
    _write(config_path, config_document(ports, store, tuning, traces_file))
    _write(ramp_path, ramp_document(tuning))
    _write(policies / "divergence.json", DIVERGENCE_POLICY)
    _write(policies / "validation.json", VALIDATION_POLICY)
    env = {m.key_env: keys[m.name] for m in MODELS} | {"LLM_SHADOW_REDIS_URL": store.url}
    settings = load_config(str(config_path), env=env)
    return DemoSettings(settings, folder, config_path, ramp_path)


def _write(path: Path, document: Mapping[str, Any]) -> None:
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
