"""The demo's legacy service: a client that sends a realistic mix of chat requests through
the official `openai` SDK (`AsyncOpenAI`) to the proxy, at a steady rate.

Layer: adapter (the openai SDK over httpx). The mix: one-off questions, answered whole
or streamed (with and without the usage chunk), follow-ups inside a conversation (the
history resent, the same `x-conversation-id`, so the conversation keeps its bucket and
goes the same way every turn), and JSON extraction (`response_format: json_object`,
which the orchestrator treats as data validation and cross-checks with three models).

Requests start on a fixed schedule whether or not earlier ones finished (open loop, as
a service's users would), at most `max_in_flight` at once; the SDK does not retry, so
every failure is seen. Each answer is checked against the fact table, as a user would
notice a wrong one, and whether the orchestrator answered (the divert path marks its
answers with `x-llm-shadow-models`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from proxy.demo import atlas

MODELS_HEADER = "x-llm-shadow-models"
CONVERSATION_HEADER = "x-conversation-id"
# (weight, kind) of each request the client starts.
MIX: tuple[tuple[float, str], ...] = (
    (0.30, "question"),
    (0.25, "question_stream"),
    (0.05, "question_stream_no_usage"),
    (0.25, "follow_up"),
    (0.15, "json"),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    started: float  # monotonic
    finished: float
    kind: str
    ok: bool
    by_orchestrator: bool = False
    right: bool = True
    error: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    conversation: str
    messages: tuple[dict[str, str], ...]


@dataclass
class ClientStats:
    outcomes: list[Outcome] = field(default_factory=list)
    started: int = 0
    skipped: int = 0  # not started: `max_in_flight` requests were already waiting

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def count(self, *, since: float = 0.0, until: float = float("inf"),
              finished_after: float = 0.0, **match: Any) -> int:
        """Outcomes started in [since, until) and finished after `finished_after`, whose
        fields equal `match`."""
        return sum(1 for o in self.outcomes if since <= o.started < until
                   and o.finished > finished_after
                   and all(getattr(o, name) == value for name, value in match.items()))

    def errors(self) -> Counter[str]:
        return Counter(o.error for o in self.outcomes if not o.ok)


class Traffic:
    def __init__(self, base_url: str, api_key: str, *, rate: float, rng: random.Random,
                 model: str, max_in_flight: int = 100, timeout: float = 30.0):
        self.rate = rate
        self.rng = rng
        self.model = model
        self.max_in_flight = max_in_flight
        self.stats = ClientStats()
        # The SDK's own HTTP client, told to ignore HTTP(S)_PROXY: loopback traffic must not
        # go through whatever proxy the shell has configured.
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0,
                                  timeout=timeout,
                                  http_client=openai.DefaultAsyncHttpxClient(trust_env=False))
        self._done: deque[Turn] = deque(maxlen=64)  # first turns a follow-up may continue
        self._tasks: set[asyncio.Task[None]] = set()
        self._conversations = 0
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Start requests on schedule until `stop()`."""
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stopping.is_set():
            if len(self._tasks) >= self.max_in_flight:
                self.stats.skipped += 1
            else:
                self.stats.started += 1
                task = asyncio.get_running_loop().create_task(self._one())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < -1.0:  # fell far behind (a stalled loop): do not burst to catch up
                next_at, delay = time.monotonic(), 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(delay, 0.0))

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self, timeout: float) -> None:
        """Let the requests in flight finish (cancel what is left after `timeout`)."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.client.close()

    # --- one request ----------------------------------------------------------------

    async def _one(self) -> None:
        kind = self.rng.choices([k for _, k in MIX], weights=[w for w, _ in MIX])[0]
        turn, question = self._compose(kind)
        started = time.monotonic()
        try:
            text, by_orchestrator = await self._ask(turn, kind)
        except openai.APIStatusError as exc:
            self.stats.record(Outcome(started, time.monotonic(), kind, False,
                                      error=f"HTTP {exc.status_code}"))
            return
        except Exception as exc:  # a user sees any other failure as a failed request too
            self.stats.record(Outcome(started, time.monotonic(), kind, False,
                                      error=type(exc).__name__))
            return
        right = question is None or atlas.is_right(question, text)
        self.stats.record(Outcome(started, time.monotonic(), kind, True, by_orchestrator,
                                  right))
        if kind != "follow_up" and kind != "json":
            self._done.append(Turn(turn.conversation, (*turn.messages,
                                                       {"role": "assistant",
                                                        "content": text})))

    def _compose(self, kind: str) -> tuple[Turn, atlas.Question | None]:
        if kind == "follow_up" and self._done:
            earlier = self._done.popleft()
            messages = (*earlier.messages, {"role": "user", "content": atlas.FOLLOW_UP})
            return Turn(earlier.conversation, messages), atlas.understand(messages)
        country = self.rng.choice(atlas.COUNTRIES)
        text = (atlas.json_question(country) if kind == "json"
                else atlas.capital_question(country))
        self._conversations += 1
        conversation = f"conv-{self._conversations:05d}-{self.rng.getrandbits(32):08x}"
        messages = ({"role": "system", "content": atlas.SYSTEM_PROMPT},
                    {"role": "user", "content": text})
        return Turn(conversation, messages), atlas.understand(messages)

    async def _ask(self, turn: Turn, kind: str) -> tuple[str, bool]:
        """The answer's text and whether the orchestrator gave it."""
        options: dict[str, Any] = {}
        stream = kind.startswith("question_stream")
        if kind == "json":
            options["response_format"] = {"type": "json_object"}
        if kind == "question_stream":
            options["stream_options"] = {"include_usage": True}
        raw = await self.client.chat.completions.with_raw_response.create(
            model=self.model, messages=list(turn.messages),  # type: ignore[arg-type]
            stream=stream, extra_headers={CONVERSATION_HEADER: turn.conversation},
            **options)
        by_orchestrator = MODELS_HEADER in raw.headers
        parsed: Any = raw.parse()
        if not stream:
            return str(parsed.choices[0].message.content or ""), by_orchestrator
        pieces = [chunk.choices[0].delta.content or "" async for chunk in parsed
                  if chunk.choices]
        return "".join(pieces), by_orchestrator
