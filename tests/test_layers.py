"""The layering the module docstrings claim holds at import time: a module that says it is
pure core, and every package `__init__`, imports in a fresh interpreter without loading
an I/O library (Redis, HTTP clients, web frameworks, OpenTelemetry's SDK or exporters).
A pure module that pulls one in costs every importer its start-up time and makes "pure"
a word rather than a property."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "proxy"
IO_LIBRARIES = ("redis", "fakeredis", "httpx", "httpcore", "aiohttp", "starlette", "uvicorn",
                "opentelemetry.sdk", "opentelemetry.exporter")
# The migration guide's import name re-exports its whole public API by design.
API_ALIASES = {"proxy.orchestrator.compat.ai_orchestrator"}

PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
loaded = [name for name in sys.argv[2:] if name in sys.modules]
print(",".join(loaded))
"""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def _pure_modules() -> list[str]:
    return sorted(_module_name(path) for path in PACKAGE.rglob("*.py")
                  if "Layer: pure core" in _docstring(path))


def _packages() -> list[str]:
    return sorted(name for name in (_module_name(path) for path in PACKAGE.rglob("__init__.py"))
                  if name not in API_ALIASES)


def _loaded(module: str) -> tuple[str, str]:
    result = subprocess.run([sys.executable, "-c", PROBE, module, *IO_LIBRARIES],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return module, result.stdout.strip()


def _check(modules: list[str]) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return {module: loaded for module, loaded in pool.map(_loaded, modules) if loaded}


def test_the_module_list_is_not_empty() -> None:
    assert len(_pure_modules()) > 40
    assert "proxy.decision" in _pure_modules()
    assert "proxy.shadow" in _packages()


@pytest.mark.integration
def test_pure_modules_load_no_io_library() -> None:
    assert _check(_pure_modules()) == {}


@pytest.mark.integration
def test_package_inits_load_no_io_library() -> None:
    assert _check(_packages()) == {}
