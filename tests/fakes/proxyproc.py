"""`llm-shadow serve` as a real subprocess, for end-to-end tests.

The child gets a clean environment (no proxy, SSL, OTEL_* or LLM_SHADOW_* leftovers from
the developer's shell) plus what the test passes; its output goes to a file the test can
read (for example to prove that no secret was logged).

Shedding (`shadow.shed_lag_ms`) is off unless a test sets it: whether the event loop
lags depends on how loaded the machine is, and tests that count shadows must not. The
shedding tests turn it on and make the lag themselves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.servers import clean_env, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]


def routes_to(upstream_url: str) -> list[dict[str, Any]]:
    return [
        {"prefix": "/openai", "upstream": upstream_url, "provider": "openai"},
        {"prefix": "/anthropic", "upstream": upstream_url, "provider": "anthropic"},
    ]


class ProxyProcess:
    def __init__(self, config: dict[str, Any], env: dict[str, str] | None = None,
                 args: list[str] | None = None):
        self.port = free_port()
        self.admin_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llm-shadow-test-"))
        proxy = config.setdefault("proxy", {})
        proxy.setdefault("listen", {})["port"] = self.port
        proxy.setdefault("admin", {})["port"] = self.admin_port
        config.setdefault("shadow", {}).setdefault("shed_lag_ms", 0)
        # Policy files are relative to the configuration file; point at the repo's.
        config.setdefault("comparison", {}).setdefault(
            "policy_file", str(REPO / "policies" / "divergence.json"))
        config.setdefault("orchestrator", {}).setdefault(
            "validation_policy_file", str(REPO / "policies" / "validation.json"))
        self.config_path = self.dir / "config.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = self.dir / "proxy.log"
        self.env = clean_env(env)
        self.args = args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait: bool = True) -> ProxyProcess:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proxy", "serve", "--config", str(self.config_path),
                 *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.dir),
            )
        if wait:
            wait_for(self.is_ready, timeout=30, message=f"proxy ready (log: {self.log_path})")
        return self

    def is_ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"proxy exited with {self.process.returncode}: {self.log()}")
        try:
            return httpx.get(self.admin_url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        code = self.process.returncode
        self.process = None
        return code

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def env_with(**values: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k == "PATH"}, **values}
