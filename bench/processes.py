"""The processes a benchmark measures, each on loopback in a process of its own (so the
load generator, the fakes and the proxy never share an event loop): a fake
OpenAI-compatible upstream and `llm-shadow serve` with a given configuration.

The fakes run on uvloop and httptools when the `dev` extra installed them (the
benchmarks measure the proxy, not the fakes), else on uvicorn's defaults.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.servers import clean_env, wait_for

REPO = Path(__file__).resolve().parents[1]


def _fast() -> str:
    if importlib.util.find_spec("httptools") and importlib.util.find_spec("uvloop"):
        return "http='httptools', loop='uvloop'"
    return "http='auto', loop='auto'"


def start_fake_upstream(port: int, behaviour: dict[str, Any] | None = None, *,
                        backlog: int = 4096) -> subprocess.Popen[bytes]:
    """The fake upstream (tests/fakes/upstream.py) with a default behaviour for every
    request; ready once `GET /v1/models` answers."""
    default = f", default=Behaviour(**{behaviour!r})" if behaviour else ""
    code = ("import uvicorn; from tests.fakes.upstream import FakeUpstream, Behaviour; "
            f"app = FakeUpstream(record=False{default}); "
            f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', "
            f"{_fast()}, lifespan='off', backlog={backlog})")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=clean_env())


def start_proxy(config: dict[str, Any], *, log: Path | None = None,
                ready: bool = True) -> subprocess.Popen[bytes]:
    """`llm-shadow serve` with `config` (which names its listen and admin ports); with
    `ready`, returns once its `/readyz` answers 200."""
    path = Path(tempfile.mkdtemp(prefix="llm-shadow-bench-")) / "config.json"
    path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "proxy", "--log-level", "warning", "serve",
               "--config", str(path)]
    if log is None:
        process = subprocess.Popen(command, cwd=REPO, env=clean_env())
    else:
        with log.open("ab") as sink:  # the child has its own descriptor
            process = subprocess.Popen(command, cwd=REPO, env=clean_env(), stdout=sink,
                                       stderr=subprocess.STDOUT)
    if ready:
        admin = config["proxy"]["admin"]["port"]
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{admin}/readyz").status_code == 200,
                 timeout=30)
    return process
