"""The whole parallel run on loopback, for end-to-end telemetry tests: a real
`llm-shadow serve` process exporting OTLP/HTTP to a real receiver, the fake legacy
upstream, a fleet of fake orchestrator models and redis-server.

One process serves every case at once, so the package starts it once: each case has its
own route prefix, and the flags (written through the admin API, as an operator would)
give each prefix its decision:

    /openai, /anthropic                  legacy only (global percentages are 0)
    /shadow/openai, /shadow/anthropic    shadow 100 %
    /divert/openai, /divert/anthropic    divert 100 %
    /dead/openai                         legacy upstream on a closed port (the proxy's 502)

A request is found again by the request id the test sent (`x-request-id`), which the
SERVER span carries; its trace is then every span with that trace id. Waiting is always
for a condition with a deadline (the exporter batches every 100 ms).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai

from tests.fakes.models import ModelBehaviour, ModelFleet
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.fakes.proxyproc import ProxyProcess
from tests.fakes.servers import free_port, wait_for
from tests.fakes.upstream import FakeUpstream

ADMIN_TOKEN = "e2e-telemetry-admin-token"
# The credentials a legacy client sends; none may show up anywhere the proxy writes.
SENTINELS = ("sk-TEST-SENTINEL", "SENTINEL2", "SENTINEL3", "SENTINEL4")
SENTINEL_HEADERS = {"api-key": "SENTINEL2", "x-api-key": "SENTINEL3"}
SENTINEL_QUERY = {"key": "SENTINEL4"}
# The orchestrator models' own keys (read by the proxy from these variables).
MODEL_KEYS = {"FAKE_KEY_ALPHA": "sk-model-alpha", "FAKE_KEY_BETA": "sk-model-beta"}
# Flags apply within ~0.1 s, and a replica stays "ready" through seconds of a loaded box.
FLAGS = {"poll_interval": 0.1, "stale_after": 2.0, "max_stale": 5.0,
         "reconnect_max_delay": 0.2, "ping_interval": 0.2, "subscriber_watchdog": 0.8,
         "heartbeat_interval": 0.2, "heartbeat_ttl": 1.0, "config_reload_interval": 0.0}
PROVIDERS = ("openai", "anthropic")
ROUTE_FLAGS = {**{f"/shadow/{p}": {"shadow_percent": 100.0} for p in PROVIDERS},
               **{f"/divert/{p}": {"divert_percent": 100.0} for p in PROVIDERS}}
PRICING = {"gpt-4o-mini": {"input_per_1m": 0.15, "output_per_1m": 0.6},
           "gpt-4o": {"input_per_1m": 2.5, "output_per_1m": 10.0},
           "claude-e2e": {"input_per_1m": 3.0, "output_per_1m": 15.0}}
_ids = itertools.count()


def echo(prompt: str) -> str:
    """What the fake legacy upstream answers, so the orchestrator can agree with it."""
    return f"Answer to: {prompt}"


def new_request_id(label: str) -> str:
    return f"e2e-{label}-{next(_ids):04d}"


def default_behaviours() -> dict[str, ModelBehaviour]:
    return {"alpha": ModelBehaviour(answer=echo), "beta": ModelBehaviour(answer=echo)}


def routes(upstream_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for provider in PROVIDERS:
        for prefix in (f"/{provider}", f"/shadow/{provider}", f"/divert/{provider}"):
            out.append({"prefix": prefix, "upstream": upstream_url, "provider": provider})
    out.append({"prefix": "/dead/openai", "upstream": f"http://127.0.0.1:{free_port()}",
                "provider": "openai",
                "timeouts": {"connect": 1.0, "read": 5.0, "write": 5.0, "pool": 1.0}})
    return out


def proxy_config(upstream_url: str, redis_url: str, prefix: str,
                 fleet: ModelFleet) -> dict[str, Any]:
    return {
        "proxy": {"routes": routes(upstream_url)},
        "redis": {"url": redis_url, "key_prefix": prefix},
        "flags": FLAGS,
        "models": fleet.entries(alpha={"cost_per_1m_tokens": 2.0},
                                beta={"api": "anthropic", "cost_per_1m_tokens": 3.0}),
        "orchestrator": {"selection": {"seed": 7}},
        "shadow": {"timeout_seconds": 20.0},
        "divert": {"fallback_after_seconds": 20.0},
        "comparison": {"noise_sample_percent": 0.0},
        "pricing": PRICING,
    }


def otel_env(receiver_url: str, **extra: str) -> dict[str, str]:
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver_url,
            "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "300",
            "OTEL_SERVICE_NAME": "llm-shadow-e2e", "LLM_SHADOW_ADMIN_TOKEN": ADMIN_TOKEN,
            **MODEL_KEYS, **extra}


class LoggingProxy(ProxyProcess):
    """`ProxyProcess` with the CLI's global options (`--log-level` goes before the
    subcommand, where `ProxyProcess` cannot put it)."""

    def __init__(self, config: dict[str, Any], env: dict[str, str], log_level: str):
        super().__init__(config, env)
        self.log_level = log_level

    def start(self, wait: bool = True) -> LoggingProxy:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proxy", "--log-level", self.log_level, "serve",
                 "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.dir))
        if wait:
            wait_for(self.is_ready, timeout=30, message=f"proxy ready (log: {self.log_path})")
        return self


@dataclass
class Stack:
    proxy: ProxyProcess
    receiver: OtlpReceiver
    upstream: FakeUpstream
    upstream_url: str
    fleet: ModelFleet
    flag_version: int = 0

    @property
    def upstream_port(self) -> int:
        return int(self.upstream_url.rsplit(":", 1)[1])

    def model_port(self, name: str) -> int:
        return self.fleet.servers[name].port

    def url(self, prefix: str) -> str:
        return self.proxy.url + prefix

    def reset(self) -> None:
        """The fakes back to their default behaviour, their records cleared."""
        self.upstream.reset()
        for model in self.fleet:
            model.behaviour = default_behaviours()[model.name]
        self.fleet.reset()

    # --- flags -------------------------------------------------------------------------

    def set_flags(self, changes: dict[str, Any]) -> int:
        """Write flags through the admin API and wait until this replica applied them."""
        response = httpx.put(self.proxy.admin_url + "/flags", json=changes, timeout=10,
                             headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        version = int(response.json()["version"])
        wait_for(lambda: self.flagz()["version"] >= version and self.flagz()["state"] == "ready",
                 timeout=15, message=f"flags version {version} applied")
        return version

    def flagz(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.proxy.admin_url + "/flagz", timeout=5).json()
        return body

    def statz(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.proxy.admin_url + "/statz", timeout=5).json()
        return body

    def scrape(self) -> str:
        response = httpx.get(self.proxy.admin_url + "/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return response.text

    def barrier(self) -> None:
        """Once this returns, every span recorded before it has been exported: the shadow
        jobs are done (`/statz`), and a later request's spans, queued behind theirs in
        the one batch queue, have arrived."""
        wait_for(lambda: self.statz()["shadow"]["in_flight"] == 0, timeout=20,
                 message="shadow jobs finished")
        request_id, _ = chat(self.url("/openai"), "barrier")
        self.trace(request_id, expect=["role:legacy"])

    # --- traces ------------------------------------------------------------------------

    def server_span(self, request_id: str, timeout: float = 15.0) -> ReceivedSpan:
        def find() -> ReceivedSpan | None:
            for span in self.receiver.find_spans():
                if span.kind == "SERVER" and span.attributes.get(
                        "llm_shadow.request.id") == request_id:
                    return span
            return None

        span: ReceivedSpan = wait_for(find, timeout=timeout,
                                      message=f"SERVER span of {request_id}")
        return span

    def trace(self, request_id: str, *, expect: Iterable[str] = (),
              timeout: float = 20.0) -> Trace:
        """The trace of `request_id` once it holds a span for each of `expect` (span
        names or `role:<role>` for CLIENT spans of that role)."""
        server = self.server_span(request_id, timeout)
        wanted = list(expect)

        def complete() -> Trace | None:
            found = Trace(server, self.receiver.trace(server.trace_id))
            return found if all(found.has(item) for item in wanted) else None

        try:
            result: Trace = wait_for(complete, timeout=timeout,
                                     message=f"trace of {request_id} with {wanted}")
        except AssertionError as exc:
            found = Trace(server, self.receiver.trace(server.trace_id))
            raise AssertionError(f"{exc}\n{found.render()}") from None
        return result


@dataclass
class Trace:
    """The spans of one request, with the lookups the tests need."""

    server: ReceivedSpan
    spans: list[ReceivedSpan]

    def has(self, item: str) -> bool:
        if item.startswith("role:"):
            return any(s.attributes.get("llm_shadow.role") == item[5:] for s in self.spans)
        return any(span.name == item for span in self.spans)

    def named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name]

    def one(self, name: str) -> ReceivedSpan:
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}:\n{self.render()}"
        return found[0]

    def role(self, role: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.attributes.get("llm_shadow.role") == role]

    def children(self, parent: ReceivedSpan) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.parent_span_id == parent.span_id]

    def render(self) -> str:
        """The span tree with its key attributes, as a reader would want to see it."""
        lines: list[str] = []
        ids = {span.span_id for span in self.spans}
        roots = [span for span in self.spans if span.parent_span_id not in ids]
        for root in sorted(roots, key=lambda s: s.start_unix_nano):
            self._render(root, 0, lines)
        return "\n".join(lines)

    def _render(self, span: ReceivedSpan, depth: int, lines: list[str]) -> None:
        attrs = ", ".join(f"{k}={v!r}" for k, v in sorted(span.attributes.items()))
        lines.append(f"{'  ' * depth}{span.kind} {span.name!r} [{span.status}] {attrs}")
        for event in span.events:
            lines.append(f"{'  ' * depth}  event {event.name}: {event.attributes}")
        for child in sorted(self.children(span), key=lambda s: s.start_unix_nano):
            self._render(child, depth + 1, lines)


# --- clients: the official SDKs, always carrying every sentinel credential ---------------


def openai_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=SENTINELS[0], max_retries=0,
                         timeout=30, default_headers=SENTINEL_HEADERS,
                         default_query=SENTINEL_QUERY)


def anthropic_client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=SENTINELS[0], max_retries=0,
                               timeout=30, default_headers=SENTINEL_HEADERS,
                               default_query=SENTINEL_QUERY)


def chat(base_url: str, prompt: str, *, stream: bool = False, include_usage: bool = False,
         model: str = "gpt-4o-mini", headers: dict[str, str] | None = None,
         request_id: str | None = None) -> tuple[str, str]:
    """One OpenAI chat completion through the proxy: `(request id, answer text)`."""
    request_id = request_id or new_request_id("chat")
    extra = {"x-request-id": request_id, **(headers or {})}
    messages: Any = [{"role": "user", "content": prompt}]
    with openai_client(base_url) as client:  # closed: its pooled connection too
        if not stream:
            completion = client.chat.completions.create(model=model, messages=messages,
                                                        extra_headers=extra)
            return request_id, completion.choices[0].message.content or ""
        options: Any = {"include_usage": True} if include_usage else openai.NOT_GIVEN
        text = ""
        for chunk in client.chat.completions.create(model=model, messages=messages,
                                                    stream=True, stream_options=options,
                                                    extra_headers=extra):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    return request_id, text


def message(base_url: str, prompt: str, *, stream: bool = False,
            model: str = "claude-e2e") -> tuple[str, str]:
    """One Anthropic message through the proxy: `(request id, answer text)`."""
    request_id = new_request_id("message")
    messages: Any = [{"role": "user", "content": prompt}]
    with anthropic_client(base_url) as client:
        if not stream:
            reply = client.messages.create(model=model, max_tokens=256, messages=messages,
                                           extra_headers={"x-request-id": request_id})
            return request_id, "".join(getattr(block, "text", "") for block in reply.content)
        with client.messages.stream(model=model, max_tokens=256, messages=messages,
                                    extra_headers={"x-request-id": request_id}) as events:
            text = "".join(events.text_stream)
    return request_id, text


def traceparent_ids(values: Iterable[str | None]) -> Iterator[str]:
    """The trace ids of W3C `traceparent` header values."""
    for value in values:
        match = re.fullmatch(r"00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}", value or "")
        if match:
            yield match.group(1)
