"""`llm-shadow ramp status | start | pause | resume | stop`: the operator's side of the
auto-ramp.

Layer: composition. Redis comes from `--redis-url`, else `LLM_SHADOW_REDIS_URL`, else the
configuration; the policy from `--policy`, else `policies/ramp.json` in the configuration
file's folder. Exit codes: 0 done, 1 the operation failed (Redis unreachable, a ramp
already running, nothing to pause or stop), 2 bad usage, configuration or policy.

    llm-shadow ramp start --reason "orchestrator v2 on /openai"
    llm-shadow ramp status
    llm-shadow ramp pause --reason "investigating a latency report"
    llm-shadow ramp resume
    llm-shadow ramp stop --reason "migration paused for the quarter"

`start` writes the ramp state and applies the first step's flags at once (audited, like
every flag change); the replica holding the ramp lock takes it from there. After a
rollback the ramp stays rolled back until `start` runs again (`--step N` to start at
step N, `--clear-kill` to turn the kill switch a rollback set back off). A person who
changes the ramp's flags meanwhile (`set`, `rollback`, the admin API, MigrationAdapter,
config.json) pauses it: `status` says who changed what and why; `resume` applies the
step's flags again, `stop` ends the ramp and leaves the flags as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from proxy.cli.common import add_config_option, load_for_redis
from proxy.cli.flags import default_actor
from proxy.cli.preamble import describe_section
from proxy.config import ConfigError, Settings
from proxy.flags.snapshot import SnapshotInvalid, default_snapshot
from proxy.flags.store import StoreError
from proxy.flags.writer import FlagWriter
from proxy.ramp.control import RampError, pause_ramp, resume_ramp, start_ramp, stop_ramp
from proxy.ramp.controller import format_duration
from proxy.ramp.readings import RampReports
from proxy.ramp.schedule import load_policy
from proxy.ramp.state import RampState, RampStateInvalid, as_json, clip
from proxy.ramp.state_store import LockHolder, RampStore
from proxy.redisclient import redis_client
from proxy.report.aggregate_store import ReportStore, ReportStoreError

CONNECT_TIMEOUT, SOCKET_TIMEOUT = 1.0, 2.0
DEFAULT_POLICY = "policies/ramp.json"  # relative to the configuration file's folder
HISTORY_SHOWN = 8


@dataclass
class Tools:
    """What a ramp command works with, on one Redis connection pool."""

    store: RampStore
    reports: RampReports
    writer: FlagWriter


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ramp = commands.add_parser("ramp", help="the guarded auto-ramp: status, start, pause, "
                                            "resume, stop",
                               description="Promote shadow/divert step by step while the "
                                           "guardrails hold; roll back when one is breached.")
    actions = ramp.add_subparsers(dest="ramp_command", metavar="ACTION", required=True)
    status = _action(actions, "status", "show the step, time in step, latest evaluation "
                                        "and the replica running the ramp")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=run_status)

    start = _action(actions, "start", "start the ramp and apply its first step's flags now")
    start.add_argument("--policy", metavar="PATH",
                       help="ramp policy (default: policies/ramp.json beside the "
                            "configuration file)")
    start.add_argument("--step", type=int, default=1, metavar="N",
                       help="start at step N (1-based, default 1)")
    start.add_argument("--restart", action="store_true",
                       help="replace a ramp that is running or paused")
    start.add_argument("--clear-kill", action="store_true",
                       help="also turn the kill switch off (global, and the route's own)")
    start.set_defaults(func=run_start)

    pause = _action(actions, "pause", "stop promotions (guardrails keep rolling back)")
    pause.set_defaults(func=run_pause)
    resume = _action(actions, "resume", "resume a paused ramp (its step's flags are "
                                        "applied again)")
    resume.set_defaults(func=run_resume)
    stop = _action(actions, "stop", "end the ramp and release its lock; the flags stay as "
                                    "they are")
    stop.set_defaults(func=run_stop)


def _action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text,
                                                         description=help_text)
    add_config_option(parser)
    parser.add_argument("--redis-url", metavar="URL",
                        help="Redis URL (default: $LLM_SHADOW_REDIS_URL, else config.json)")
    if name != "status":
        parser.add_argument("--reason", default="", help="why (recorded in the history and "
                                                         "the flags audit)")
        parser.add_argument("--actor", help="who (default: cli:user@host)")
    return parser


# --- commands -----------------------------------------------------------------------------


def run_start(args: argparse.Namespace) -> int:
    settings = _settings(args)
    path = Path(args.policy) if args.policy else settings.resolve(DEFAULT_POLICY)
    try:
        policy = load_policy(path)
    except ConfigError as exc:
        print(f"llm-shadow ramp: invalid ramp policy:\n{exc}", file=sys.stderr)
        return 2
    if not 1 <= args.step <= len(policy.steps):
        print(f"llm-shadow ramp: --step must be 1 to {len(policy.steps)}", file=sys.stderr)
        return 2

    async def start(tools: Tools) -> int:
        state = await start_ramp(
            tools.store, tools.reports, tools.writer, policy, source=str(path),
            step=args.step - 1, now=time.time(), actor=args.actor or default_actor(),
            reason=args.reason, restart=args.restart, clear_kill=args.clear_kill)
        print(f"ramp started on {policy.scope}: {state.position()} applied "
              f"(shadow {state.current.shadow_percent:g}%, divert "
              f"{state.current.divert_percent:g}%)")
        snapshot, _ = await tools.writer.read()
        if snapshot is not None and snapshot.kill:
            print("note: the kill switch is on, so traffic stays legacy; "
                  "`llm-shadow ramp start --restart --clear-kill` or `llm-shadow set "
                  "--no-kill` releases it")
        return 0

    return _with_tools(settings, start)


def run_pause(args: argparse.Namespace) -> int:
    return _transition(args, lambda tools, who: pause_ramp(tools.store, **who),
                       "ramp paused at {}: no promotions until `llm-shadow ramp resume`; "
                       "guardrails still roll back on a clear breach")


def run_resume(args: argparse.Namespace) -> int:
    return _transition(args, lambda tools, who: resume_ramp(tools.store, writer=tools.writer,
                                                            **who),
                       "ramp resumed at {}: its flags are applied again")


def run_stop(args: argparse.Namespace) -> int:
    return _transition(args, lambda tools, who: stop_ramp(tools.store, **who),
                       "ramp stopped at {}; the flags stay as they are (`llm-shadow "
                       "status`); `llm-shadow ramp start` begins a new ramp")


def _transition(args: argparse.Namespace,
                change: Callable[[Tools, dict[str, Any]], Awaitable[RampState]],
                said: str) -> int:
    """A person's transition of the ramp: who and why recorded, the new position said."""
    async def apply(tools: Tools) -> int:
        state = await change(tools, {"now": time.time(), "reason": args.reason,
                                     "actor": args.actor or default_actor()})
        print(said.format(state.position()))
        return 0

    return _with_tools(_settings(args), apply)


def run_status(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def status(tools: Tools) -> int:
        store = tools.store
        try:
            _, state = await store.read()
        except RampStateInvalid as exc:
            print(f"stored ramp state is invalid: {exc}\n"
                  f"`llm-shadow ramp start --restart` replaces it")
            return 1
        evaluation = await store.evaluation()
        holder = await store.holder()
        history = await store.history(HISTORY_SHOWN)
        if args.json:
            print(orjson.dumps(_status_json(state, evaluation, holder, history)).decode())
        else:
            _print_status(state, evaluation, holder, history)
        return 0

    return _with_tools(settings, status)


# --- shared steps -------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return load_for_redis(args, "ramp")


def _with_tools(settings: Settings, action: Callable[[Tools], Awaitable[int]]) -> int:
    config = settings.config

    async def run() -> int:
        client = redis_client(config.redis, connect_timeout=CONNECT_TIMEOUT,
                              socket_timeout=SOCKET_TIMEOUT)
        prefix = config.redis.keyspace
        reports = ReportStore.from_config(config.redis, config.comparison, client=client)
        tools = Tools(RampStore(client, prefix), RampReports(reports),
                      FlagWriter(client, prefix, defaults=default_snapshot(config)))
        try:
            return await action(tools)
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except (StoreError, ReportStoreError) as exc:
        print(f"llm-shadow ramp: {exc} ({describe_section(config.redis)}); is Redis "
              f"running and is redis.url right?", file=sys.stderr)
    except RampError as exc:
        print(f"llm-shadow ramp: {exc}", file=sys.stderr)
    except SnapshotInvalid as exc:
        print(f"llm-shadow ramp: flags not written:\n{exc}", file=sys.stderr)
    return 1


# --- output -------------------------------------------------------------------------------


def _print_status(state: RampState | None, evaluation: dict[str, Any] | None,
                  holder: LockHolder | None, history: list[dict[str, str]]) -> None:
    if state is None:
        print("no ramp started (`llm-shadow ramp start` starts policies/ramp.json)")
        return
    now = time.time()
    step = state.current
    print(f"ramp {state.status.upper()} on {state.policy.scope} (policy "
          f"{state.policy_source or '-'}, started {_when(state.started_at)} by "
          f"{state.started_by})")
    levers = f"shadow {step.shadow_percent:g}%, divert {step.divert_percent:g}%"
    if state.active:
        print(f"{state.position()}: {levers}; {format_duration(now - state.step_started_at)}"
              f" in step (needs {format_duration(step.min_duration_seconds)} and "
              f"{step.min_compared} compared)")
    else:
        print(f"{state.status.replace('_', ' ')} at {state.position()} "
              f"{_when(state.updated_at)}")
    if not state.applied:
        print("flags: NOT YET APPLIED (the replica holding the ramp lock applies them)")
    if state.status == "paused":
        print("to continue: `llm-shadow ramp resume` (applies the step's flags again); "
              "to end it: `llm-shadow ramp stop`")
    print(f"last change: {state.event} {_when(state.updated_at)} by {state.updated_by}"
          f"{': ' + clip(state.reason, 300) if state.reason else ''}")
    print(_lock_line(holder, state))
    if evaluation is not None:
        _print_evaluation(evaluation, now)
    if history:
        print("\nrecent events (newest first):")
        for event in history:
            print(f"  {_when(float(event.get('at') or 0))}  {event.get('event', '?'):<8} "
                  f"step {int(event.get('step') or 0) + 1} \"{event.get('label', '')}\"  "
                  f"{event.get('actor', '')}: {event.get('reason', '')}")


def _lock_line(holder: LockHolder | None, state: RampState) -> str:
    if holder is not None:
        expires = "" if holder.expires_in is None else f" (expires in {holder.expires_in:.1f}s" \
                                                        f" unless renewed)"
        return f"lock: held by replica {holder.replica_id}{expires}"
    if state.needs_runner:
        return ("lock: free: no replica runs the ramp right now (one takes it within "
                "seconds; if none does, are the replicas running?)")
    return "lock: free (nothing to run)"


def _print_evaluation(evaluation: dict[str, Any], now: float) -> None:
    at = float(evaluation.get("at") or 0)
    print(f"\nlatest evaluation, {format_duration(now - at)} ago by "
          f"{evaluation.get('evaluated_by', '?')}: {str(evaluation.get('action')).upper()} "
          f"({evaluation.get('reason')})")
    print(f"  {evaluation.get('message', '')}")
    for check in evaluation.get("checks") or []:
        print(f"  {check.get('route', ''):<14} {check.get('guardrail', ''):<18} "
              f"{check.get('verdict', ''):<15} {check.get('detail', '')}")


def _status_json(state: RampState | None, evaluation: dict[str, Any] | None,
                 holder: LockHolder | None, history: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "state": None if state is None else as_json(state),
        "in_step_seconds": None if state is None else time.time() - state.step_started_at,
        "evaluation": evaluation,
        "lock": None if holder is None else {"replica_id": holder.replica_id,
                                             "expires_in": holder.expires_in},
        "history": history,
    }


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
