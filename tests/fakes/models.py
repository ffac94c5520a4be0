"""Fake model APIs for the orchestrator: several small servers on real loopback sockets,
each one a model with its own behaviour (right, often wrong, slow, failing, expensive,
hanging), speaking both the OpenAI-compatible chat API and Anthropic's messages API.

    with ModelFleet({"good": ModelBehaviour(answer="Paris"),
                     "flaky": ModelBehaviour(answer="Paris", wrong_every=2),
                     "down": ModelBehaviour(status=503)}) as fleet:
        config["models"] = fleet.entries()
        env = fleet.keys()          # each model's api_key_env: without it, never selected

Every request is recorded with its server-side receive and finish times and whether the
client went away (`Recorded` from `tests.fakes.upstream`), so tests assert on what the
servers saw: overlapping receive times prove a concurrent fan-out, a `disconnected`
request proves a cancelled call. A `Gate` holds answers until a given number of requests
arrived across all servers (a rendezvous, not a timer): a sequential fan-out would never
fill it. `scripted_verdict` makes a model a fake judge that answers the verdict a test
writes into the answer it judges. Like the fake upstream, this shares no code with the
proxy.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakes.servers import ThreadedServer, wait_for
from tests.fakes.upstream import Recorded

Answer = str | Callable[[str], str]


class Gate:
    """Holds each arriving request until `expected` requests arrived (across threads),
    or `timeout` seconds passed (then it opens anyway and `timed_out` says so)."""

    def __init__(self, expected: int, timeout: float = 20.0):
        self.expected = expected
        self.timeout = timeout
        self.arrived = 0
        self.timed_out = False
        self._lock = threading.Lock()

    def arrive(self) -> None:
        with self._lock:
            self.arrived += 1

    async def wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while self.arrived < self.expected:
            if time.monotonic() > deadline:
                self.timed_out = True
                return
            await asyncio.sleep(0.005)


@dataclass
class ModelBehaviour:
    answer: Answer = "Answer"
    # Deterministic "often wrong": every n-th call answers `wrong_answer` instead.
    wrong_every: int | None = None
    wrong_answer: str = "Wrong answer"
    latency_ms: float = 0.0
    hang: bool = False  # never answer; only the client going away ends the request
    status: int | None = None  # answer every call with this error status
    fail_every: int | None = None  # every n-th call fails with 500
    usage: bool = True
    input_tokens: int | None = None  # reported usage overrides (an expensive model)
    output_tokens: int | None = None
    malformed: bool = False  # 200 with a body that is not the API's shape
    gate: Gate | None = None


@dataclass
class FakeModel:
    """One model's API as an ASGI app."""

    name: str
    behaviour: ModelBehaviour = field(default_factory=ModelBehaviour)
    requests: list[Recorded] = field(default_factory=list)
    calls: int = 0

    def bodies(self) -> list[Any]:
        return [request.json() for request in self.requests]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        recorded = Recorded(
            method=scope["method"], path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=bytes(body), received_at=time.monotonic())
        self.requests.append(recorded)
        self.calls += 1
        number = self.calls
        answering = asyncio.ensure_future(self._answer(send, recorded, number))
        watching = asyncio.ensure_future(_disconnect(receive))
        done, _ = await asyncio.wait({answering, watching}, return_when=asyncio.FIRST_COMPLETED)
        if watching in done and not answering.done():
            recorded.disconnected = True
            answering.cancel()
        watching.cancel()
        await asyncio.gather(answering, watching, return_exceptions=True)
        if recorded.finished_at is None:  # hung or disconnected: it ends now
            recorded.finished_at = time.monotonic()

    async def _answer(self, send: Any, recorded: Recorded, number: int) -> None:
        b = self.behaviour
        if b.gate is not None:
            b.gate.arrive()
            await b.gate.wait()
        if b.hang:
            await asyncio.Event().wait()
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        if b.status is not None or (b.fail_every and number % b.fail_every == 0):
            await _send(send, recorded, b.status or 500,
                        {"error": {"message": "fake failure", "type": "server_error"}})
            return
        if b.malformed:
            await _send(send, recorded, 200, {"unexpected": True})
            return
        payload = recorded.json()
        text = self._text(payload, number)
        if recorded.path.endswith("/messages"):
            await _send(send, recorded, 200, self._anthropic(payload, text))
        else:
            await _send(send, recorded, 200, self._openai(payload, text))

    def _text(self, payload: Mapping[str, Any], number: int) -> str:
        b = self.behaviour
        if b.wrong_every and number % b.wrong_every == 0:
            return b.wrong_answer
        return b.answer(prompt_of(payload)) if callable(b.answer) else b.answer

    def _usage(self, payload: Mapping[str, Any], text: str) -> tuple[int, int]:
        b = self.behaviour
        prompt = len(orjson.dumps(payload.get("messages", []))) // 4 + 1
        return (b.input_tokens if b.input_tokens is not None else prompt,
                b.output_tokens if b.output_tokens is not None else len(text) // 4 + 1)

    def _openai(self, payload: Mapping[str, Any], text: str) -> dict[str, Any]:
        prompt_tokens, completion_tokens = self._usage(payload, text)
        body: dict[str, Any] = {
            "id": "chatcmpl-" + _digest(self.name, text), "object": "chat.completion",
            "created": 1_700_000_000, "model": payload.get("model", self.name),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}]}
        if self.behaviour.usage:
            body["usage"] = {"prompt_tokens": prompt_tokens,
                             "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
        return body

    def _anthropic(self, payload: Mapping[str, Any], text: str) -> dict[str, Any]:
        input_tokens, output_tokens = self._usage(payload, text)
        return {"id": "msg_" + _digest(self.name, text), "type": "message",
                "role": "assistant", "model": payload.get("model", self.name),
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}


class ModelFleet:
    """One `ThreadedServer` per fake model."""

    def __init__(self, behaviours: Mapping[str, ModelBehaviour]):
        self.models = {name: FakeModel(name, behaviour) for name, behaviour in behaviours.items()}
        self.servers = {name: ThreadedServer(model) for name, model in self.models.items()}

    def __enter__(self) -> ModelFleet:
        for server in self.servers.values():
            server.thread.start()
        for server in self.servers.values():
            wait_for(lambda s=server: s.server.started, message=f"fake model on {server.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers.values():  # all at once: each takes a poll interval
            server.server.should_exit = True
        for server in self.servers.values():
            server.thread.join(timeout=10)

    def __getitem__(self, name: str) -> FakeModel:
        return self.models[name]

    def __iter__(self) -> Iterator[FakeModel]:
        return iter(self.models.values())

    def url(self, name: str) -> str:
        return self.servers[name].url

    def entries(self, **per_model: Mapping[str, Any]) -> list[dict[str, Any]]:
        """`config.json` `models` entries for the fleet; `per_model[name]` overrides
        fields (prices, `api`, `avg_response_time`, `timeout_seconds`, ...)."""
        out = []
        for name in self.models:
            entry: dict[str, Any] = {"name": name, "provider": "fake",
                                     "cost_per_1m_tokens": 1.0, "avg_response_time": 1.0,
                                     "api_key_env": _key_env(name)}
            entry.update(per_model.get(name, {}))
            base = self.url(name)
            entry["base_url"] = base if entry.get("api") == "anthropic" else base + "/v1"
            out.append(entry)
        return out

    def keys(self) -> dict[str, str]:
        """Each model's `api_key_env` variable with a fake key (a model whose variable is
        unset is never selected, as in production)."""
        return {_key_env(name): f"sk-model-{name}" for name in self.models}

    def reset(self) -> None:
        for model in self.models.values():
            model.requests.clear()
            model.calls = 0


def _key_env(name: str) -> str:
    return f"FAKE_KEY_{name.upper().replace('-', '_')}"


_ASKED_VERDICT = re.compile(r"verdict=([A-Za-z_]+)")


def scripted_verdict(prompt: str) -> str:
    """An `answer` that makes a fake model act as the judge: it replies with the verdict
    the answers it is shown ask for (`verdict=subset` written in the candidate answer),
    as the rubric asks: one JSON object, reason first. `verdict=garbage` gives a reply
    that names no class; no marker at all gives `same_facts`."""
    asked = _ASKED_VERDICT.findall(prompt)
    verdict = asked[-1] if asked else "same_facts"
    if verdict == "garbage":
        return "Both answers look fine to me, more or less."
    return orjson.dumps({"reason": f"the fake judge was asked for {verdict}",
                         "verdict": verdict}).decode()


def prompt_of(payload: Mapping[str, Any]) -> str:
    for message in reversed(payload.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(part.get("text", "") for part in content or []
                           if isinstance(part, dict))
    return ""


async def _disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send(send: Any, recorded: Recorded, status: int, payload: Any) -> None:
    """The answer; the call counts as finished when its answer leaves (a request that
    arrives at another model after that never overlaps it, whichever thread runs)."""
    body = orjson.dumps(payload)
    recorded.finished_at = time.monotonic()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
