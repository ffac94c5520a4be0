"""What every command shares: a command whose optional packages are missing (the sidecar
image installs only what serving needs) stops with status 2 and the install line."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCKED = "import sys; sys.modules[{name!r}] = None; from proxy.cli.main import main; " \
          "sys.exit(main({argv!r}))"


@pytest.mark.parametrize(("blocked", "argv", "extra"), [
    ("openai", ["demo"], "demo"),
    ("plotly", ["report", "--format", "html", "--redis-url", "redis://127.0.0.1:9/0"],
     "report"),
])
def test_a_missing_extra_is_named_with_its_install_line(blocked: str, argv: list[str],
                                                        extra: str) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKED.format(name=blocked, argv=argv)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"pip install 'llm-shadow[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr
