"""The comparator against its calibration set, and its cost per pair.

Prints the share of labelled pairs (tests/data/divergence/) in the right class, the
confusion matrix (expected label by row, given label by column), the pairs it gets
wrong, the fact changes it labels identical or equivalent (the aim is none), and the
time `compare()` takes per pair, p50 and p99, for answers of about 1 KB and 10 KB:

- `runbook edit` / `runbook paraphrase` (about 1 KB): a realistic answer (a runbook
  with a list, code spans, numbers) against itself with one number changed near its
  end (the hardest change to see by edit distance), and against its paraphrase;
- `collage edit` / `collage rewrite`: the calibration set's short prose answers joined
  into one dense answer (names, numbers, dates, code blocks in every line) against
  itself with one number changed, and against the orchestrator sides of the same pairs.

Answers are extracted once, beforehand: the times are the comparison alone (extracting
an answer is one `orjson.loads` of the body on top).

    python bench/divergence.py                    # defaults: 2000 / 200 pairs timed
    python bench/divergence.py --rounds 500
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from proxy.comparison import LABELS, compare  # noqa: E402
from proxy.comparison.answer import Answer, build_answer  # noqa: E402
from tests.comparison.calibration import Pair, pairs  # noqa: E402


def accuracy(all_pairs: list[Pair]) -> None:
    matrix: Counter[tuple[str, str]] = Counter()
    wrong, hidden = [], []
    for pair in all_pairs:
        result = pair.compare()
        matrix[pair.expected, result.label] += 1
        if result.label != pair.expected:
            wrong.append(f"  {pair.name}: expected {pair.expected}, got {result.label} "
                         f"({result.reason}, score {result.score:.3f})")
        if pair.data["facts_differ"] and result.label in ("identical", "equivalent"):
            hidden.append(f"  {pair.name}: {result.label} ({result.reason})")
    right = sum(matrix[label, label] for label in LABELS)
    print(f"calibration pairs: {len(all_pairs)}   right: {right} "
          f"({right / len(all_pairs):.1%}, aim >= 95%)")
    print(f"fact changes labelled identical/equivalent: {len(hidden)} (aim 0)")
    print(*hidden, sep="\n") if hidden else None
    print("\nconfusion matrix (rows: expected, columns: labelled)")
    print(f"{'':>12}" + "".join(f"{label:>12}" for label in LABELS))
    for expected in LABELS:
        print(f"{expected:>12}" + "".join(f"{matrix[expected, got]:>12}" for got in LABELS))
    if wrong:
        print("\nwrong:", *wrong, sep="\n")


def corpus(texts: list[str], size: int) -> str:
    """Texts joined as paragraphs up to about `size` characters, cut at a sentence."""
    out, i = "", 0
    while len(out) < size:
        out += ("\n\n" if out else "") + texts[i % len(texts)]
        i += 1
    cut = max(out.rfind(". ", 0, size), out.rfind("\n", 0, size))
    return out[:cut + 1] if cut > size // 2 else out[:size]


def edited(text: str) -> str:
    """The text with its last number (in the last fifth) changed."""
    numbers = [m for m in re.finditer(r"\d+", text) if m.start() > len(text) * 0.6]
    if not numbers:
        return text.replace(".", ", 42.", 1)
    m = numbers[-1]
    return text[:m.start()] + str(int(m.group(0)) + 1) + text[m.end():]


def workloads(all_pairs: list[Pair], size: int) -> dict[str, tuple[Answer, Answer]]:
    """The pairs timed at one size: a realistic answer (the calibration set's runbook,
    with its closing tip, about 1 KB) edited and paraphrased, and a dense collage of the
    set's short prose answers (names, numbers, code blocks) edited and rewritten."""
    by_name = {p.name: p for p in all_pairs}
    prose = [p for p in all_pairs if p.shapes[0] == "text"
             and isinstance(p.data["legacy"], str) and not p.legacy.is_json]
    legacy = corpus([p.data["legacy"] for p in prose], size)
    orchestrator = corpus([p.data["orchestrator"] for p in prose], size)
    out = {}
    if size <= 1000:
        superset = by_name["long-superset"].data["orchestrator"]
        tip = superset[len(by_name["long-superset"].data["legacy"]):]
        runbook = by_name["long-paraphrase"].data["legacy"] + tip
        paraphrase = by_name["long-paraphrase"].data["orchestrator"] + tip
        out["runbook edit"] = (runbook, edited(runbook))
        out["runbook paraphrase"] = (runbook, paraphrase)
    out["collage edit"] = (legacy, edited(legacy))
    out["collage rewrite"] = (legacy, orchestrator)
    return {name: (build_answer("openai_chat", text=a, finish="stop"),
                   build_answer("openai_chat", text=b, finish="stop"))
            for name, (a, b) in out.items()}


def timed(a: Answer, b: Answer, rounds: int) -> tuple[float, float, float, str]:
    """(CPU p50, CPU p99, wall p50) in ms. CPU time (the thread's) is the comparator's
    cost whatever else runs on the machine; wall time adds waiting for a core."""
    for _ in range(min(50, rounds)):
        compare(a, b)
    cpu, wall = [], []
    for _ in range(rounds):
        start, started = time.thread_time(), time.perf_counter()
        result = compare(a, b)
        cpu.append(time.thread_time() - start)
        wall.append(time.perf_counter() - started)
    cpu.sort()
    p99 = cpu[min(len(cpu) - 1, int(0.99 * len(cpu)))]
    return (statistics.median(cpu) * 1e3, p99 * 1e3, statistics.median(wall) * 1e3,
            result.label)


def timings(all_pairs: list[Pair], rounds: int) -> None:
    print(f"\ntime per pair (compare() only; {rounds} pairs at 1 KB, {rounds // 10} at 10 KB)")
    print(f"{'answers':>7} {'pair':>19} {'chars':>6} {'cpu p50':>8} {'cpu p99':>8} "
          f"{'wall p50':>9}  label   (ms)")
    for size, count in ((1000, rounds), (10_000, max(20, rounds // 10))):
        for name, (a, b) in workloads(all_pairs, size).items():
            p50, p99, wall, label = timed(a, b, count)
            print(f"{size // 1000:>5}KB {name:>19} {len(a.text):>6} {p50:>8.3f} {p99:>8.3f} "
                  f"{wall:>9.3f}  {label}")
    print("aim: p50 <= 1 ms per 1 KB pair; load average now "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000,
                        help="pairs timed per 1 KB workload (a tenth of that at 10 KB)")
    args = parser.parse_args()
    all_pairs = pairs()
    accuracy(all_pairs)
    timings(all_pairs, args.rounds)


if __name__ == "__main__":
    main()
