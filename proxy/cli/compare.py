"""`llm-shadow compare A B`: label one pair of answers offline, with the route's policy.

Layer: composition. How an operator checks a divergence policy change before deploying
it, or asks why a pair got its label: each of A and B is a file (a response body saved
from a log or written by hand: chat completion, Responses, Anthropic message, an SSE
stream, a bare chat message, any JSON answer, or plain text), `-` for standard input,
or an inline JSON body; `--text` takes both as literal text answers. The shape is
detected (`proxy.comparison.answer_from_document`). The policy is the configured
`comparison.policy_file` (`--config`, `$LLM_SHADOW_CONFIG`, ./config.json, as for every
command; the built-in policy when that file is missing, as for `serve`), or `--policy
PATH`; `--route` picks the route's override.

Prints label, score, reason and evidence (the differing tokens or paths: this command
runs on the operator's own files, so it shows them), `--format json` for scripts. Exit
0 when the pair was compared (whatever the label), 2 on bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from proxy.cli.common import add_config_option, load_or_exit
from proxy.comparison import (
    Answer,
    Comparison,
    DivergencePolicy,
    Limits,
    answer_from_document,
    compare,
    load_policy,
)
from proxy.config import ConfigError
from proxy.config.policyfiles import load_divergence

MAX_INPUT = 16 * 1024 * 1024


class InputError(Exception):
    """An argument that is not a readable answer."""


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "compare", help="label one pair of answers offline (label, score, reason, evidence)",
        description="Compare a legacy answer (A) with an orchestrator answer (B) as the "
                    "proxy would. A and B are files, '-' for standard input, or inline "
                    "JSON bodies.")
    parser.add_argument("legacy", metavar="A", help="the legacy answer")
    parser.add_argument("candidate", metavar="B", help="the orchestrator's answer")
    add_config_option(parser)
    parser.add_argument("--policy", metavar="PATH",
                        help="divergence policy file (default: the configuration's "
                             "comparison.policy_file)")
    parser.add_argument("--route", metavar="PREFIX", default="/",
                        help="route whose policy applies, e.g. /openai (default: /)")
    parser.add_argument("--text", action="store_true",
                        help="take A and B as literal text answers")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    if not args.route.startswith("/"):
        return _fail(f"--route {args.route!r} must start with / (a route prefix such as "
                     "/openai)")
    if args.legacy == "-" and args.candidate == "-":
        return _fail("only one of A and B can be '-' (standard input)")
    policy, limits = _policy(args)
    try:
        legacy_shape, legacy = _answer("A", args.legacy, args.text)
        candidate_shape, candidate = _answer("B", args.candidate, args.text)
    except InputError as exc:
        return _fail(str(exc))
    result = compare(legacy, candidate, policy.for_route(args.route), limits)
    shapes = (legacy_shape, candidate_shape)
    if args.format == "json":
        sys.stdout.write(render_json(result, args.route, shapes))
    else:
        sys.stdout.write(render_text(result, args.route, shapes))
    return 0


def _fail(message: str) -> int:
    print(f"llm-shadow compare: {message}", file=sys.stderr)
    return 2


def _policy(args: argparse.Namespace) -> tuple[DivergencePolicy, Limits]:
    settings = load_or_exit(args)
    limits = Limits.from_section(settings.config.comparison)
    try:
        if args.policy:
            return load_policy(Path(args.policy)), limits
        # As `serve` and `check-config`: a missing file means the built-in policy.
        return load_divergence(settings), limits
    except ConfigError as exc:
        print(f"llm-shadow compare: invalid divergence policy:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _answer(name: str, value: str, literal: bool) -> tuple[str, Answer]:
    if literal:
        return answer_from_document(value)
    data = _read(name, value)
    try:
        return answer_from_document(data)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


def _read(name: str, value: str) -> bytes:
    if value == "-":
        data = sys.stdin.buffer.read(MAX_INPUT + 1)
        if len(data) > MAX_INPUT:
            raise InputError(f"{name}: standard input is larger than "
                             f"{MAX_INPUT // (1024 * 1024)} MiB")
        return data
    stripped = value.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{name}: not valid JSON ({exc})") from None
        return stripped.encode()
    path = Path(value)
    if not path.is_file():
        raise InputError(f"{name}: no such file: {value} (give a file, '-' for standard "
                         "input, an inline JSON body, or --text for literal text)")
    if path.stat().st_size > MAX_INPUT:
        raise InputError(f"{name}: {value} is larger than {MAX_INPUT // (1024 * 1024)} MiB")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read {value}: {exc.strerror}") from None


def as_dict(result: Comparison, route: str, shapes: tuple[str, str]) -> dict[str, Any]:
    return {"route": route, "shapes": {"legacy": shapes[0], "orchestrator": shapes[1]},
            **result.as_dict(evidence=True)}


def render_json(result: Comparison, route: str, shapes: tuple[str, str]) -> str:
    data = as_dict(result, route, shapes)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def render_text(result: Comparison, route: str, shapes: tuple[str, str]) -> str:
    lines = [f"label     {result.label}",
             f"score     {result.score:.3f}",
             f"reason    {result.reason}"]
    evidence = list(result.evidence) or ["(none)"]
    lines.append(f"evidence  {evidence[0]}")
    lines += [f"          {item}" for item in evidence[1:]]
    lines.append(f"shapes    {shapes[0]} → {shapes[1]}")
    lines.append(f"route     {route}")
    if result.truncated:
        lines.append("note      an answer was compared in part (over the comparison bounds)")
    return "\n".join(lines) + "\n"
