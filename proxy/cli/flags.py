"""`llm-shadow status | set | rollback | audit`: the operator's levers on the live flags.

Layer: composition. Each command reads the configuration (for the Redis URL, key prefix
and defaults; `--redis-url` > `LLM_SHADOW_REDIS_URL` > config.json), says first (on
standard error) which file and which Redis it used, validates what it is about to write
before connecting, and talks to Redis through `proxy.flags.writer`. Exit codes: 0 done,
1 the operation failed (Redis unreachable, no live replica or one that did not apply the
rollback in time), 2 bad usage or an invalid change.

Safety against the wrong Redis or a typo: `set` and `rollback` warn loudly when no live
replica heartbeats under that Redis and key prefix (the change then reached no sidecar),
and `rollback --wait` fails; a route that the configuration does not have is refused,
unless `--force` and a live replica's configuration has it.

    llm-shadow set --shadow 5 --divert 0 --reason "start shadowing"
    llm-shadow set --route /anthropic --divert 10
    llm-shadow rollback --reason "divergence spike" --wait
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from proxy.cli.common import add_config_option, load_for_redis
from proxy.cli.preamble import describe_section
from proxy.cli.status import one_line, print_status, status_json
from proxy.config import Settings
from proxy.flags.replicas import (
    ReplicaStatus,
    parse_status,
    pending,
    serving,
)
from proxy.flags.snapshot import FlagSnapshot, SnapshotInvalid, apply_changes, default_snapshot
from proxy.flags.store import StoreError
from proxy.flags.writer import FlagWriter


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    status = _command(commands, "status", "show the flags and every live replica's version")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=run_status)

    change = _command(commands, "set", "change traffic percentages or switches")
    change.add_argument("--shadow", type=float, metavar="PCT", help="shadow percentage 0-100")
    change.add_argument("--divert", type=float, metavar="PCT", help="divert percentage 0-100")
    change.add_argument("--route", metavar="PREFIX",
                        help="apply --shadow/--divert/--kill to this route only")
    change.add_argument("--clear-route", action="store_true",
                        help="remove the --route override (the route inherits again)")
    change.add_argument("--kill", action=argparse.BooleanOptionalAction, default=None,
                        help="turn the kill switch on (--kill) or off (--no-kill)")
    change.add_argument("--changes", metavar="JSON",
                        help='any partial snapshot, e.g. \'{"feature_flags": '
                             '{"enable_validation": false}}\'')
    change.add_argument("--reason", help="why (recorded in the snapshot and audit)")
    change.add_argument("--force", action="store_true",
                        help="write a --route this configuration does not have, if a live "
                             "replica's configuration has it")
    _actor_option(change)
    change.set_defaults(func=run_set)

    rollback = _command(commands, "rollback",
                        "legacy only on every replica: kill on, percentages 0")
    _actor_option(rollback)
    rollback.add_argument("--reason", help="why (recorded in the snapshot and audit)")
    rollback.add_argument("--wait", action="store_true",
                          help="return once every live replica applied it (exit 1 if not)")
    rollback.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                          help="how long --wait waits (default 10)")
    rollback.set_defaults(func=run_rollback)

    audit = _command(commands, "audit", "show recent flag changes, newest first")
    audit.add_argument("--limit", type=int, default=20, metavar="N")
    audit.set_defaults(func=run_audit)


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text,
                                                          description=help_text)
    add_config_option(parser)
    parser.add_argument("--redis-url", metavar="URL",
                        help="Redis URL (default: $LLM_SHADOW_REDIS_URL, else config.json)")
    return parser


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", help="who is changing the flags (default: cli:user@host)")


# --- commands -------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def status(writer: FlagWriter) -> int:
        snapshot, problem = await writer.read()
        replicas = await _replicas(writer)
        shown = snapshot or writer.defaults
        if args.json:
            print(orjson.dumps(status_json(snapshot, problem, shown, replicas)).decode())
        else:
            print_status(snapshot, problem, shown, replicas)
        return 0

    return _with_writer(settings, status)


def run_set(args: argparse.Namespace) -> int:
    settings = _settings(args)
    changes = _changes(args)
    actor = args.actor or default_actor()
    _validate_or_exit(default_snapshot(settings.config), changes, actor, args.reason)
    unknown = unknown_routes(changes, settings)
    if unknown and not args.force:
        _usage(f"{_routes_text(unknown)} not in {_config_name(settings)}, whose routes are "
               f"{_known(settings)}; check the spelling, or add --force to write it for the "
               f"replicas whose configuration has it")

    async def write(writer: FlagWriter) -> int:
        replicas = await _replicas(writer)
        if unknown and not _forced_routes_served(unknown, replicas):
            return 2
        snapshot = await writer.update(changes, actor=actor, reason=args.reason)
        print(f"flags version {snapshot.version} written: {one_line(snapshot)}")
        if snapshot.kill and args.kill is None:
            print("note: the kill switch is on, so all traffic stays legacy; "
                  "`llm-shadow set --no-kill` releases it")
        if not replicas:
            _warn_no_replicas(settings)
        return 0

    return _with_writer(settings, write)


def unknown_routes(changes: dict[str, Any], settings: Settings) -> list[str]:
    """Route prefixes the change sets that the configuration does not have (removing an
    override, `null`, is always allowed: it cleans up)."""
    known = {route.prefix for route in settings.config.proxy.routes}
    routes = changes.get("routes")
    if not isinstance(routes, dict):
        return []
    return sorted(prefix for prefix, value in routes.items()
                  if value is not None and prefix not in known)


def _forced_routes_served(unknown: list[str], replicas: list[ReplicaStatus]) -> bool:
    """With --force: True when a live replica serves each route (said on stderr)."""
    missing = [prefix for prefix in unknown if not serving(replicas, prefix)]
    if missing:
        routes = sorted({p for r in replicas for p in (r.routes or ())})
        print(f"llm-shadow: --force: no live replica serves {_routes_text(missing)} either "
              f"(their routes: {', '.join(routes) or 'none reported'}); nothing written",
              file=sys.stderr)
        return False
    for prefix in unknown:
        names = ", ".join(r.replica_id for r in serving(replicas, prefix))
        print(f"llm-shadow: note: {prefix} is not in this configuration; written for the "
              f"replicas that serve it: {names}", file=sys.stderr)
    return True


def run_rollback(args: argparse.Namespace) -> int:
    settings = _settings(args)
    actor = args.actor or default_actor()

    async def rollback(writer: FlagWriter) -> int:
        snapshot = await writer.rollback(actor=actor, reason=args.reason)
        print(f"rolled back: flags version {snapshot.version} (kill on, shadow 0%, "
              f"divert 0%)")
        if not await _replicas(writer):
            _warn_no_replicas(settings)
            if args.wait:
                print("llm-shadow rollback --wait: FAILED: no live replica to wait for, so "
                      "no sidecar is known to have applied it", file=sys.stderr)
                return 1
            return 0
        if not args.wait:
            return 0
        return await _wait_for_replicas(writer, snapshot.version, args.timeout)

    return _with_writer(settings, rollback)


def run_audit(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.limit < 1:
        print("llm-shadow: --limit must be at least 1", file=sys.stderr)
        return 2

    async def audit(writer: FlagWriter) -> int:
        entries = await writer.store.audit(args.limit)
        if not entries:
            print("no flag changes recorded")
        for entry in entries:
            print(entry.summary())
        return 0

    return _with_writer(settings, audit)


# --- shared steps ---------------------------------------------------------------------


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def _settings(args: argparse.Namespace) -> Settings:
    return load_for_redis(args, args.command)


async def _replicas(writer: FlagWriter) -> list[ReplicaStatus]:
    return [r for r in map(parse_status, await writer.store.statuses()) if r]


def _warn_no_replicas(settings: Settings) -> None:
    config = settings.config
    print(f"llm-shadow: WARNING: no live replica is watching "
          f"{describe_section(config.redis)}: "
          f"the change is stored, but no sidecar applied it. If sidecars are running, "
          f"this is not their Redis or prefix (check --config / LLM_SHADOW_REDIS_URL); "
          f"a sidecar that starts later applies it.", file=sys.stderr)


def _config_name(settings: Settings) -> str:
    return settings.source if settings.has_file else "the built-in defaults (no config file)"


def _known(settings: Settings) -> str:
    return ", ".join(route.prefix for route in settings.config.proxy.routes) or "none"


def _routes_text(prefixes: list[str]) -> str:
    return ("route " if len(prefixes) == 1 else "routes ") + ", ".join(prefixes)


def _with_writer(settings: Settings, action: Callable[[FlagWriter], Awaitable[int]]) -> int:
    config = settings.config

    async def run() -> int:
        writer = FlagWriter(config.redis, defaults=default_snapshot(config))
        try:
            return await action(writer)
        finally:
            await writer.aclose()

    try:
        return asyncio.run(run())
    except StoreError as exc:
        print(f"llm-shadow: {exc} ({describe_section(config.redis)})", file=sys.stderr)
        return 1
    except SnapshotInvalid as exc:
        print(f"llm-shadow: change refused:\n{exc}", file=sys.stderr)
        return 2


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.changes:
        try:
            extra = orjson.loads(args.changes)
        except orjson.JSONDecodeError as exc:
            _usage(f"--changes is not JSON: {exc}")
        if not isinstance(extra, dict):
            _usage("--changes must be a JSON object")
        changes.update(extra)
    levers = {"shadow_percent": args.shadow, "divert_percent": args.divert, "kill": args.kill}
    levers = {key: value for key, value in levers.items() if value is not None}
    if args.route:
        route = None if args.clear_route else levers
        changes.setdefault("routes", {})[args.route] = route
    elif args.clear_route:
        _usage("--clear-route needs --route PREFIX")
    else:
        changes.update(levers)
    if not changes or (args.route and not args.clear_route and not levers):
        _usage("nothing to change: give --shadow, --divert, --kill/--no-kill or --changes")
    return changes


def _validate_or_exit(base: FlagSnapshot, changes: dict[str, Any], actor: str,
                      reason: str | None) -> None:
    """Refuse an invalid change before touching Redis (the writer checks again against
    the stored snapshot)."""
    try:
        apply_changes(base, changes, version=base.version + 1, actor=actor, reason=reason)
    except SnapshotInvalid as exc:
        print(f"llm-shadow: change refused:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _usage(message: str) -> Any:
    print(f"llm-shadow: {message}", file=sys.stderr)
    raise SystemExit(2)


async def _wait_for_replicas(writer: FlagWriter, version: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        replicas = await _replicas(writer)
        waiting = pending(replicas, version)
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    if not replicas:
        print(f"llm-shadow rollback --wait: FAILED: every replica stopped reporting while "
              f"waiting for version {version}", file=sys.stderr)
        return 1
    for replica in sorted(replicas, key=lambda r: r.replica_id):
        mark = "NOT APPLIED" if replica in waiting else "applied"
        print(f"  {replica.replica_id:<32} v{replica.version:<6} {replica.state:<10} {mark}")
    if waiting:
        print(f"{len(waiting)} of {len(replicas)} replicas did not apply version {version} "
              f"within {timeout:g}s", file=sys.stderr)
        return 1
    print(f"all {len(replicas)} live replicas applied version {version}")
    return 0
