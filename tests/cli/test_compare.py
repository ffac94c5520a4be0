"""`llm-shadow compare A B`, run as a user runs it: the installed console script in a
subprocess, on files this test writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.comparison import pairs
from tests.fakes.servers import clean_env

SCRIPT = Path(sys.executable).with_name("llm-shadow")
pytestmark = pytest.mark.integration


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "compare", *args], cwd=cwd, env=clean_env(),
                          input=stdin, capture_output=True, text=True, timeout=60)


def write(folder: Path, name: str, content: str | bytes | dict[str, Any]) -> str:
    path = folder / name
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return name


def test_two_text_files(tmp_path: Path) -> None:
    a = write(tmp_path, "legacy.txt", "The capital of France is Paris.\n")
    b = write(tmp_path, "orchestrator.txt", "The capital of France is Lyon.\n")
    result = run(a, b, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "label     major" in result.stdout
    assert "reason    fact_changed" in result.stdout
    assert "evidence  Paris → Lyon" in result.stdout
    assert "shapes    text → text" in result.stdout


def test_inline_json_bodies_as_json(tmp_path: Path) -> None:
    result = run('{"gpu": "H100", "price": 2.49}', '{"price": 3.99, "gpu": "H100"}',
                 "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["label"], data["reason"]) == ("major", "json_value_changed")
    assert data["evidence"] == ["$.price: 2.49 → 3.99"]
    assert data["shapes"] == {"legacy": "json", "orchestrator": "json"}


@pytest.mark.parametrize(("legacy", "candidate", "shape", "label", "reason"), [
    (pairs.chat(None, tools=[("get_weather", {"city": "Paris", "unit": "celsius"})],
                finish="tool_calls"),
     pairs.chat(None, tools=[("get_weather", {"city": "Paris", "unit": "fahrenheit"})],
                finish="tool_calls"), "openai_chat", "major", "tool_call_changed"),
    (pairs.anthropic("Paris is the capital of France."),
     pairs.anthropic("Paris is the capital of France.", stop="max_tokens"),
     "anthropic_messages", "major", "finish_changed"),
    (pairs.responses("Your order ships tomorrow."), pairs.responses("Your order ships today."),
     "openai_responses", "major", "fact_changed"),
    (pairs.chat_stream(["Hello ", "world"]), pairs.chat_stream(["Hello world"]),
     "openai_chat", "identical", "identical"),
])
def test_wire_formats_are_detected(tmp_path: Path, legacy: bytes, candidate: bytes,
                                   shape: str, label: str, reason: str) -> None:
    a, b = write(tmp_path, "a.json", legacy), write(tmp_path, "b.json", candidate)
    result = run(a, b, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["shapes"] == {"legacy": shape, "orchestrator": shape}
    assert (data["label"], data["reason"]) == (label, reason)


def test_route_policy_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    write(tmp_path / "policies", "divergence.json",
          {"routes": {"/extract": {"json_sets": ["$.tags"]}}})
    write(tmp_path, "config.json", {"comparison": {"policy_file": "policies/divergence.json"}})
    a = write(tmp_path, "a.json", {"tags": ["billing", "urgent"]})
    b = write(tmp_path, "b.json", {"tags": ["urgent", "billing"]})
    ordered = run(a, b, "--route", "/openai", "--config", "config.json", cwd=tmp_path)
    as_set = run(a, b, "--route", "/extract", "--config", "config.json", cwd=tmp_path)
    assert "label     major" in ordered.stdout
    assert "label     equivalent" in as_set.stdout
    direct = run(a, b, "--route", "/extract", "--policy", "policies/divergence.json",
                 cwd=tmp_path)
    assert "label     equivalent" in direct.stdout


def test_standard_input_and_literal_text(tmp_path: Path) -> None:
    b = write(tmp_path, "b.txt", "No, it is not free.")
    result = run("-", b, cwd=tmp_path, stdin="Yes, it is free.")
    assert "label     major" in result.stdout
    literal = run("--text", "It costs $3.99.", "It costs 3.99 USD.", cwd=tmp_path)
    assert literal.returncode == 0 and "label     equivalent" in literal.stdout


def test_a_configuration_without_a_policy_file_uses_the_built_in_policy(
        tmp_path: Path) -> None:
    write(tmp_path, "config.json", {"comparison": {}})
    b = write(tmp_path, "b.txt", "Paris.")
    result = run(b, b, "--config", "config.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "label     identical" in result.stdout


def test_standard_input_over_the_bound_is_refused_not_cut(tmp_path: Path) -> None:
    b = write(tmp_path, "b.txt", "Paris.")
    result = run("-", b, cwd=tmp_path, stdin="x" * (16 * 1024 * 1024 + 1))
    assert result.returncode == 2
    assert "A: standard input is larger than 16 MiB" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["missing.json", "b.txt"], "A: no such file: missing.json"),
    (["b.txt", "{not json"], "B: not valid JSON"),
    (["-", "-"], "only one of A and B can be '-'"),
    (["b.txt", "b.txt", "--route", "openai"], "--route 'openai' must start with /"),
    (["b.txt", "b.txt", "--policy", "bad.json"], r"bad.json: default.prose_facts"),
    (["b.txt", "b.txt", "--config", "broken.json"], "invalid configuration"),
    (["latin1.txt", "b.txt"], "A: not UTF-8 text"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, args: list[str],
                                                message: str) -> None:
    write(tmp_path, "b.txt", "Paris.")
    write(tmp_path, "bad.json", {"default": {"prose_facts": "sometimes"}})
    write(tmp_path, "broken.json", {"comparison": {"policy_fil": "x"}})
    write(tmp_path, "latin1.txt", "Café".encode("latin-1"))
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
