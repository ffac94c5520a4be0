"""One run of `llm-shadow demo`: choose the store and the trace destination, bring the
world up, say what is running, play the story, show the results, clean up.

Layer: composition (the entry point `proxy.cli.demo` calls). Returns the exit status:
0 when the ramp promoted while healthy and rolled back on its own after the regression,
1 with a message naming what did not happen otherwise.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from proxy.demo import results
from proxy.demo.settings import MIN_COMPARED, MODELS, STEPS, Tuning
from proxy.demo.storage import Store, choose_store, delete_keys
from proxy.demo.story import Narrator, Plan, Story, play
from proxy.demo.traces import Destination, choose_destination
from proxy.demo.upstreams import REGRESSION_STORIES, Mode
from proxy.demo.watch import paragraph
from proxy.demo.world import DemoFailed, World, running_world
from proxy.flags.store import StoreError
from proxy.ramp.control import RampError
from proxy.ramp.state import RampStateInvalid
from proxy.report.aggregate_store import ReportStoreError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The store failing under the demo (a Redis that went away, or refuses writes).
STORE_FAILURES = (StoreError, ReportStoreError, RampError, RampStateInvalid)


@dataclass(frozen=True, slots=True)
class Options:
    step_seconds: float = 5.0
    rate: float = 25.0
    regression: Mode = "wrong"
    redis_url: str = DEFAULT_REDIS_URL
    redis_shown: str = DEFAULT_REDIS_URL  # the URL without its password, for messages
    keep_keys: bool = False
    folder: Path | None = None
    seed: int = 7
    noise_percent: float = 100.0
    timeout: float = 300.0


async def run_demo(options: Options, env: Mapping[str, str],
                   write: Callable[[str], None]) -> int:
    narrator = Narrator(time.monotonic(), write)
    since = time.time()
    store = await choose_store(options.redis_url)
    folder = options.folder or Path(tempfile.mkdtemp(prefix="llm-shadow-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    destination = choose_destination(env, folder)
    plan = Plan(rate=options.rate, regression=options.regression, seed=options.seed,
                deadline=options.timeout, inject_after=options.step_seconds / 2,
                after_rollback=max(2.0, options.step_seconds / 2))
    try:
        async with running_world(store, folder, destination,
                                 Tuning(options.step_seconds, options.noise_percent,
                                        options.seed)) as world:
            intro(world, options, narrator.say)
            story = await play(world, plan, narrator)
        drops = world.runtime.telemetry.providers.drops()
        await _results(story, world, destination, drops, since, narrator)
    except DemoFailed as failed:
        narrator.say(f"\nllm-shadow demo: FAILED: {failed}")
        return 1
    except STORE_FAILURES as exc:
        narrator.say(f"\nllm-shadow demo: FAILED: the store stopped working: {exc}")
        return 1
    finally:
        await _clean_up(store, options, folder, narrator.say)
    narrator.say(f"\nDemo finished in {narrator.elapsed:.0f}s: the ramp promoted while the "
                 f"orchestrator was healthy and rolled back on its own when it broke.")
    return 0


def intro(world: World, options: Options, say: Callable[[str], None]) -> None:
    folder = world.demo.folder
    models = ", ".join(f"{name} :{server.port}" for name, server in world.model_servers.items())
    say("llm-shadow demo: a migration's parallel run, canary and rollback, on this machine.")
    say("")
    say("Running in this process, on 127.0.0.1:")
    item = paragraph(say, indent=19)
    item(f"  legacy upstream  {world.legacy_server.url}: a fake OpenAI-compatible API "
         f"(gpt-4o-mini) answering capitals and currencies from a small table, worded a "
         f"little differently each time, like a real model")
    item(f"  orchestrator     the built-in pipeline, calling {len(MODELS)} fake models that "
         f"each check their own API key: {models}")
    item(f"  proxy            {world.proxy_url}/openai/v1 (admin {world.admin_url}: "
         f"/flagz /statz /metrics)")
    item(f"  client           the openai SDK (AsyncOpenAI) at {options.rate:g} requests/s: "
         f"questions, streamed answers, follow-ups in conversations (x-conversation-id), "
         f"JSON extraction")
    item(f"  store            {_store_line(world.store, options)}")
    item(f"  traces           {world.destination.describe}; content capture on (the "
         f"fakes' answers are made up), so spans carry the evidence and the report keeps "
         f"divergent pairs to show side by side")
    item(f"  configuration    {folder / 'config.json'}, policies/ beside it")
    say("")
    shadow = " -> ".join(name.split()[1] for name, _, divert in STEPS if not divert)
    divert = " -> ".join(name.split()[1] for name, _, d in STEPS if d)
    text = paragraph(say, indent=0)
    text(f"The story: the auto-ramp shadows {shadow} of /openai, then diverts {divert}. It "
         f"promotes a step only when the step's guardrails hold with at least "
         f"{MIN_COMPARED} comparisons: divergence against the noise floor, orchestrator "
         f"errors, divert fallbacks, latency delta p95, cost per request. At the last step, "
         f"which holds longer, the demo injects a regression "
         f"({REGRESSION_STORIES[options.regression]}). The ramp has to notice and roll back "
         f"on its own.")
    say("")


def _store_line(store: Store, options: Options) -> str:
    if store.kind == "redis":
        fate = "kept (--keep-keys)" if options.keep_keys else "deleted at the end"
        return f"Redis at {options.redis_shown}, keys under {store.prefix}:* ({fate})"
    if store.unreachable:
        return (f"in-process (memory://): no Redis at {options.redis_shown} "
                f"({store.unreachable}); flags, ramp and report live in this process")
    return "in-process (memory://), as asked; flags, ramp and report live in this process"


async def _results(story: Story, world: World, destination: Destination,
                   drops: list[tuple[str, int]], since: float, narrator: Narrator) -> None:
    say = narrator.say
    say("")
    results.what_happened(story, world, say)
    report = await results.read_report(world.demo.settings, since - 60.0)
    results.show_report(report, world.demo.folder / "report.html", say)
    results.show_traces(destination, world.spans, drops, report, say)
    say(f"Configuration the demo ran with: {world.demo.config_path}")


async def _clean_up(store: Store, options: Options, folder: Path,
                   say: Callable[[str], None]) -> None:
    if not store.shared:
        return
    if options.keep_keys:
        say(f"Redis keys kept under {store.prefix}:* (they expire within about an hour); "
            f"read them with `llm-shadow report --config {folder / 'config.json'}` (or "
            f"`ramp status`, `audit`, with the same --config)")
        return
    try:
        deleted = await delete_keys(store)
    except Exception as exc:  # reported, the demo's result stands
        say(f"warning: could not delete the demo's Redis keys under {store.prefix}:* "
            f"({type(exc).__name__})")
        return
    say(f"Redis: deleted the demo's {deleted} keys under {store.prefix}:*")
