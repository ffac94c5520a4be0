"""Kept divergent pairs as HTML: the two answers side by side, the differing tokens
highlighted, the reason and evidence above them, and a link to the trace.

Layer: pure core (strings in, HTML out; every value from an answer is escaped). The
highlight is a token diff (words, numbers, punctuation, whitespace runs) of the two
kept texts with `difflib.SequenceMatcher` (line by line first for multi-line texts such
as indented JSON): what only legacy says is marked on the left, what only the
orchestrator says on the right. It is for the eye; the label and the
evidence come from the comparison's own rules. A kept side is at most 4 KB, so the diff
is quick even at its quadratic worst.

Links: with a Jaeger base URL (`llm-shadow report --jaeger-url`), the request id links
to the trace (by trace id when the trace was recorded, else a search on the tag
`llm_shadow.request.id`); without one, the page says how to find it.
"""

from __future__ import annotations

import difflib
import html
import re
import urllib.parse
from collections.abc import Callable, Sequence

import orjson

from proxy.report.example import Example, Side
from proxy.report.text import when

_TOKEN = re.compile(r"\s+|\d+(?:[.,:]\d+)*|\w+|[^\w\s]", re.UNICODE)
TAG = "llm_shadow.request.id"
SERVICE = "llm-shadow"

STYLE = """
.pairs{display:flex;flex-direction:column;gap:1.2em}
.example{border:1px solid #ddd;border-radius:6px;padding:.8em 1em;background:#fff}
.example.major{border-left:6px solid #e53935}.example.minor{border-left:6px solid #ffb300}
.meta{font-size:.9em;color:#333;margin-bottom:.4em}
.meta .label{font-weight:bold;text-transform:uppercase;padding:0 .4em;border-radius:3px;color:#fff}
.meta .label.major{background:#e53935}.meta .label.minor{background:#ffb300;color:#222}
.evidence{font-size:.9em;margin:.3em 0 .6em}
.evidence code{background:#fff3e0;padding:0 .3em;border-radius:3px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.side h4{margin:.2em 0;font-size:.85em;color:#555;font-weight:600}
.side pre{white-space:pre-wrap;word-break:break-word;margin:0;background:#fafafa;
  border:1px solid #eee;padding:.6em;font-size:.88em;max-height:24em;overflow:auto}
.side .finish{font-size:.8em;color:#666;margin-top:.2em}
mark.gone{background:#ffcdd2;text-decoration:line-through;text-decoration-color:#c62828}
mark.new{background:#c8e6c9}
"""


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def highlight(legacy: str, orchestrator: str) -> tuple[str, str]:
    """Both texts as escaped HTML, what only one side has wrapped in `<mark>` (`gone` on
    the legacy side, `new` on the orchestrator's). Multi-line texts (indented JSON, code)
    are matched line by line first, then token by token inside the lines that changed,
    so a missing JSON key marks its whole line."""
    if "\n" not in legacy and "\n" not in orchestrator:
        return _token_diff(legacy, orchestrator)
    return _diff(legacy.splitlines(keepends=True), orchestrator.splitlines(keepends=True),
                 _token_diff)


def _token_diff(legacy: str, orchestrator: str) -> tuple[str, str]:
    return _diff(tokens(legacy), tokens(orchestrator), _marked)


def _diff(a: list[str], b: list[str],
          changed: Callable[[str, str], tuple[str, str]]) -> tuple[str, str]:
    """Both sides as HTML: the runs they share escaped, the runs that differ through
    `changed` (lines are diffed again token by token; tokens are marked)."""
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        if op == "equal":
            left.append(html.escape(old))
            right.append(html.escape(new))
            continue
        gone, came = changed(old, new) if old and new else _marked(old, new)
        left.append(gone)
        right.append(came)
    return "".join(left), "".join(right)


def _marked(old: str, new: str) -> tuple[str, str]:
    return (_mark("gone", old) if old else ""), (_mark("new", new) if new else "")


def _mark(kind: str, text: str) -> str:
    """Each line's text marked on its own; whitespace and line breaks stay outside the
    marks, so a highlight hugs the words."""
    out = []
    for part in re.split(r"(\s*\n\s*)", text):
        stripped = part.strip()
        if not stripped:
            out.append(html.escape(part))
            continue
        start = part.index(stripped)
        out.append(html.escape(part[:start]) + f'<mark class="{kind}">{html.escape(stripped)}'
                   f"</mark>" + html.escape(part[start + len(stripped):]))
    return "".join(out)


def trace_link(request_id: str, trace_id: str, jaeger_url: str | None) -> str | None:
    """Where a request's trace is in Jaeger, or None without a Jaeger URL."""
    if not jaeger_url:
        return None
    base = jaeger_url.rstrip("/")
    if trace_id:
        return f"{base}/trace/{urllib.parse.quote(trace_id)}"
    tags = orjson.dumps({TAG: request_id}).decode()
    return f"{base}/search?" + urllib.parse.urlencode({"service": SERVICE, "tags": tags})


def render_examples(examples: Sequence[Example], jaeger_url: str | None = None) -> str:
    if not examples:
        return ""
    items = "\n".join(render_example(example, jaeger_url) for example in examples)
    where = ("Each request id links to its trace." if jaeger_url else
             f"Find a request's trace in Jaeger by the tag <code>{TAG}</code> (or pass "
             "<code>--jaeger-url</code> to link them).")
    return (f'<h3>Divergent pairs kept ({len(examples)}: major first, newest first)</h3>\n'
            f'<p class="hint">Differences marked: <mark class="gone">only legacy</mark> '
            f'<mark class="new">only the orchestrator</mark>. {where}</p>\n'
            f'<div class="pairs">\n{items}\n</div>')


def render_example(example: Example, jaeger_url: str | None = None) -> str:
    left, right = highlight(example.legacy.text, example.orchestrator.text)
    link = trace_link(example.request_id, example.trace_id, jaeger_url)
    request = html.escape(example.request_id)
    request_html = (f'<a href="{html.escape(link)}" target="_blank" rel="noopener">'
                    f'<code>{request}</code></a>' if link
                    else f'<code title="Jaeger tag {TAG}">{request}</code>')
    trace = (f" · trace <code>{html.escape(example.trace_id)}</code>"
             if example.trace_id else "")
    evidence = "".join(f"<code>{html.escape(item)}</code> " for item in example.evidence)
    label = html.escape(example.label)
    legacy_title = "legacy" + (f" ({html.escape(example.legacy_model)})"
                               if example.legacy_model else "")
    orchestrator_title = "orchestrator" + (f" ({html.escape(', '.join(example.models))})"
                                           if example.models else "")
    at = when(example.at, seconds=True)
    return f"""<div class="example {label}">
<div class="meta"><span class="label {label}">{label}</span> <code>{html.escape(
        example.reason)}</code> · score {example.score:.3f} · {at} · request
{request_html}{trace}</div>
{f'<div class="evidence">Evidence: {evidence}</div>' if evidence else ''}
<div class="pair">
<div class="side"><h4>{legacy_title}</h4><pre>{left}</pre>{_finish(
        example.legacy, example.orchestrator, "gone")}</div>
<div class="side"><h4>{orchestrator_title}</h4><pre>{right}</pre>{_finish(
        example.orchestrator, example.legacy, "new")}</div>
</div></div>"""


def _finish(side: Side, other: Side, kind: str) -> str:
    parts = []
    if side.finish:
        finish = html.escape(side.finish)
        parts.append(f"finish: {finish}" if side.finish == other.finish
                     else f'finish: <mark class="{kind}">{finish}</mark>')
    if side.cut:
        parts.append("cut when kept")
    return f'<div class="finish">{" · ".join(parts)}</div>' if parts else ""
