"""The README stays honest: every configuration key has a row, CI runs exactly the
README's test command, and every CLI subcommand it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from proxy.cli.main import build_parser
from proxy.config.model import Config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += keys(annotation, key + ".")
        else:
            out.append(key)
    return out


def test_every_configuration_key_is_documented() -> None:
    missing = [key for key in keys(Config) if f"| `{key}` |" not in README]
    assert not missing, f"README configuration table lacks {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    command = "bash .ci/bootstrap --test && .venv/bin/python -m pytest -q"
    assert f"    {command}\n" in README
    assert command in (REPO / ".ci" / "run").read_text()


def test_every_cli_command_in_the_readme_exists() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    code = "\n".join(re.findall(r"```.*?```", README, flags=re.S)
                     + re.findall(r"`[^`\n]+`", README)
                     + [line for line in README.splitlines() if line.startswith("    ")])
    shown = set(re.findall(r"llm-shadow ([a-z][a-z-]+)", code))
    assert shown - set(commands) == set()
