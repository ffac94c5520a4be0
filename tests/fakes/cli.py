"""The `llm-shadow` console script as a user runs it: a subprocess, in a folder of the
test's choosing, with a clean environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fakes.servers import clean_env

CONSOLE_SCRIPT = Path(sys.executable).with_name("llm-shadow")


def llm_shadow(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `llm-shadow ARGS` and return its exit status and output (text)."""
    return subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=cwd, env=clean_env(env),
                          capture_output=True, text=True, timeout=timeout, check=False)
