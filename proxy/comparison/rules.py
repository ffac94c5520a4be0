"""The decisive rules: what makes a difference between two answers `major` whatever the
edit distance, or at least `minor`.

Layer: pure core. `proxy.comparison.comparator` measures how much two answers differ (the
score); these functions say *what* differs, as `Finding`s with a reason and evidence
(`proxy.comparison.finding`):

- JSON answers and tool-call arguments: any changed leaf at a compared path, any
  missing or extra key or array item (`missing_equals_empty` lets null, [] and {} equal
  an absent key), beyond the route's `number_tolerance`; key order and number
  formatting (`2.5` / `2.50`, `21` / `21.0`) are not changes; arrays at the route's
  `json_sets` paths are compared as sets. A prose string inside JSON (20+ characters,
  five or more words) is judged by the prose rules, so a reworded summary is not a
  changed value unless a fact in it changed.
- Tool calls: a different number of calls or function names, or an argument change.
- Finish reasons of different classes (`stop`, `length`, `tool_calls`,
  `content_filter`, ...); an unknown finish on one side (a cut stream) is not a class.
- An empty answer against a non-empty one; a refusal against an answer.
- Prose: changed facts (`proxy.comparison.facts`); a subset or superset of facts makes
  the label at least `minor`; when both answers state facts and they all agree, the
  label is at most `minor` (same facts, different words).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rapidfuzz import fuzz

from proxy.comparison.agreement import FactDiff, compare_facts, polar_swaps, swaps, wording
from proxy.comparison.answer import Answer, ToolCall
from proxy.comparison.facts import Facts, extract
from proxy.comparison.finding import Finding, Reason, show
from proxy.comparison.jsondiff import JsonDiff, ProseJudge, ProseVerdict
from proxy.comparison.prose import fold, unmark
from proxy.comparison.similarity import text_divergence

_STOP_LIKE = frozenset({"stop", "tool_calls"})
ALIKE = 0.3  # text divergence under which two answers read alike
_JSON_REASONS: dict[str, Reason] = {"missing": "json_key_missing", "added": "json_key_added",
                                    "value": "json_value_changed"}


def has_content(answer: Answer) -> bool:
    return bool(answer.text.strip() or answer.tool_calls or answer.embeddings)


def emptiness(a: Answer, b: Answer) -> Finding | None:
    if has_content(a) == has_content(b):
        return None
    side = "legacy" if not has_content(a) else "orchestrator"
    return Finding("empty", "text", (f"{side} answer is empty",))


def finish_change(a: Answer, b: Answer) -> Finding | None:
    """Different finish classes; `stop` and `tool_calls` are one class when both sides
    called tools (some servers say `stop` after a tool call)."""
    x, y = a.finish_reason, b.finish_reason
    if x is None or y is None or x == y:
        return None
    if a.tool_calls and b.tool_calls and {x, y} <= _STOP_LIKE:
        return None
    return Finding("finish_changed", "finish_reason", (f"finish: {x} → {y}",))


def json_findings(diff: JsonDiff, where: str = "", comparator: str = "json",
                  reason: Reason | None = None) -> list[Finding]:
    """Findings for the changes of one structural diff; `reason` overrides the JSON
    reasons (tool-call arguments are `tool_call_changed`)."""
    found: dict[Reason, list[str]] = {}
    for change in diff.changes:
        prefix = f"{where} {change.path}" if where else change.path
        if change.kind == "missing":
            kind: Reason = "json_key_missing"
            item = f"{prefix}: {show(change.left)} → (missing)"
        elif change.kind == "added":
            kind = "json_key_added"
            item = f"{prefix}: (missing) → {show(change.right)}"
        elif change.kind == "value":
            kind = "json_value_changed"
            item = f"{prefix}: {change.note or show(change.left) + ' → ' + show(change.right)}"
        else:
            continue
        found.setdefault(reason or kind, []).append(item)
    for name, count in diff.counts.items():  # changes past the kept ones still count
        if name != "prose" and count:
            found.setdefault(reason or _JSON_REASONS[name], [])
    return [Finding(r, comparator, tuple(i for i in items if i)) for r, items in found.items()]


DiffFn = Callable[[object, object], JsonDiff]


def tool_findings(a: Sequence[ToolCall], b: Sequence[ToolCall],
                  diff: DiffFn) -> tuple[float, list[Finding]]:
    """(mean divergence of the paired calls, findings). Calls are paired by name, equal
    arguments first, so the order of parallel calls does not matter."""
    names_a = sorted(c.name for c in a)
    names_b = sorted(c.name for c in b)
    if names_a != names_b:
        evidence = f"tools: {', '.join(names_a) or '(none)'} → {', '.join(names_b) or '(none)'}"
        return 1.0, [Finding("tool_call_changed", "tool_calls", (evidence,))]
    left = list(a)
    right = list(b)
    pairs: list[tuple[ToolCall, ToolCall]] = []
    for call in list(left):
        twin = next((c for c in right if c.name == call.name and c.arguments == call.arguments),
                    None)
        if twin is not None:
            left.remove(call)
            right.remove(twin)
    for call in left:
        twin = next(c for c in right if c.name == call.name)
        right.remove(twin)
        pairs.append((call, twin))
    total, findings = 0.0, []
    for x, y in pairs:
        if x.is_json and y.is_json:
            result = diff(x.parsed, y.parsed)
            total += result.fraction
            findings += json_findings(result, x.name, "tool_calls", "tool_call_changed")
        else:
            total += text_divergence(x.arguments, y.arguments, case_sensitive=True)[0]
            findings.append(Finding("tool_call_changed", "tool_calls",
                                    (f"{x.name}: {show(x.arguments)} → {show(y.arguments)}",)))
    return (round(total / len(a), 6) if a else 0.0), findings


@dataclass(frozen=True, slots=True)
class ProseResult:
    divergence: float
    cut: bool
    diff: FactDiff
    a: Facts
    b: Facts
    reworded: bool = False  # content words replaced: at least minor

    @property
    def facts_agree(self) -> bool:
        """The answers share facts and none contradicts: the same answer, or a subset
        or superset of it (at most a minor change)."""
        return self.diff.common and not self.diff.changed


def prose(a: str, b: str, *, max_chars: int, case_sensitive: bool = False,
          tolerance: float = 0.0, facts: bool = True, a_cut: bool = False,
          b_cut: bool = False) -> ProseResult:
    """Facts and similarity of two prose texts (each cut at `max_chars`). Paragraphs
    both answers contain word for word state the same facts on both sides: only the
    others are searched for facts (an edited long answer costs what its edit costs)."""
    cut = len(a) > max_chars or len(b) > max_chars
    a, b = a[:max_chars], b[:max_chars]
    part_a, part_b, shared = _differing(a, b)
    left, right = extract(part_a), extract(part_b)
    if shared:  # names, quotes and code are looked up in all of the other answer
        left.lookup, right.lookup = shared + "\n\n" + left.text, shared + "\n\n" + right.text
    if facts:
        # Cut at `max_chars`, both sides are compared on their beginnings as they are.
        diff = compare_facts(left, right, tolerance=tolerance, a_cut=a_cut, b_cut=b_cut)
    else:
        diff = FactDiff()
    x, y = shared + " " + left.clean, shared + " " + right.clean
    if not case_sensitive:
        x, y = fold(x), fold(y)
    divergence, text_cut = text_divergence(x, y, max_chars=max_chars,
                                           case_sensitive=case_sensitive)
    reworded = False
    if facts and divergence <= ALIKE and not diff.changed:
        # Texts that read alike: a word that turns the statement around, values that
        # changed places, or replaced content words (what the score cannot see).
        flips, reworded = wording(left, right)
        if divergence <= 0.1:
            flips += swaps(left, right)
            polar = polar_swaps(left, right)
            if polar and fuzz.ratio(x, y) >= 90:  # aligned texts, not reordered sentences
                flips += polar
        if flips:
            diff = replace(diff, flips=diff.flips + tuple(flips))
    return ProseResult(divergence, cut or text_cut, diff, left, right, reworded)


def _differing(a: str, b: str) -> tuple[str, str, str]:
    """(the paragraphs of `a` that `b` lacks, those of `b` that `a` lacks, the shared
    ones), each joined; the shared part is empty when the texts share no paragraph."""
    paragraphs_a, paragraphs_b = a.split("\n\n"), b.split("\n\n")
    if min(len(paragraphs_a), len(paragraphs_b)) < 2:
        return a, b, ""
    shared = Counter(paragraphs_a) & Counter(paragraphs_b)
    if not shared:
        return a, b, ""
    common = "\n\n".join(unmark(p) for p in paragraphs_a if p in shared)
    return _without(paragraphs_a, shared), _without(paragraphs_b, shared), common


def _without(paragraphs: list[str], shared: Counter[str]) -> str:
    left = Counter(shared)
    kept = []
    for paragraph in paragraphs:
        if left[paragraph]:
            left[paragraph] -= 1
        else:
            kept.append(paragraph)
    return "\n\n".join(kept)


def prose_findings(result: ProseResult) -> list[Finding]:
    found: list[Finding] = []
    if result.a.refusal and result.b.refusal:
        return found  # two refusals: what each mentions while refusing is moot
    if result.a.refusal != result.b.refusal:
        side = "orchestrator" if result.b.refusal else "legacy"
        found.append(Finding("refusal", "text", (f"{side} refuses",)))
    diff = result.diff
    evidence = tuple(diff.evidence())
    if diff.changed:
        found.append(Finding("fact_changed", "text", evidence))
    elif diff.missing:
        found.append(Finding("fact_missing", "text", evidence))
    elif diff.added:
        found.append(Finding("fact_added", "text", evidence))
    return found


def prose_judge(*, max_chars: int, case_sensitive: bool, tolerance: float,
                facts: bool) -> ProseJudge:
    """The prose rules as a judge for prose strings inside JSON."""

    def judge(a: str, b: str) -> ProseVerdict:
        result = prose(a, b, max_chars=max_chars, case_sensitive=case_sensitive,
                       tolerance=tolerance, facts=facts)
        changed = result.diff.changed or result.a.refusal != result.b.refusal
        note = ", ".join(result.diff.evidence()[:2]) if changed else ""
        return ProseVerdict(result.divergence, changed, note)

    return judge
