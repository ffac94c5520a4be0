"""The comparator against its calibration set, and its cost per pair.

Prints the share of labelled pairs (tests/data/divergence/) in the right class, the
confusion matrix (expected label by row, given label by column), the pairs it gets
wrong, the fact changes it labels identical or equivalent (the aim is none), and the
time `compare()` takes per pair, p50 and p99, for answers of about 1 KB and 10 KB:

- `edit`: one answer and the same answer with one number changed near its end (the
  cheapest kind of difference to see, the hardest to see by edit distance);
- `rewrite`: the legacy sides of the calibration pairs joined, against their
  orchestrator sides (paraphrases, changed facts, code, other languages).

Answers are extracted once, beforehand: the times are the comparison alone (extracting
an answer is one `orjson.loads` of the body on top).

    python bench/divergence.py                    # defaults: 2000 / 200 pairs timed
    python bench/divergence.py --rounds 500
"""

from __future__ import annotations

import argparse
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
    prose = [p for p in all_pairs if p.shapes[0] == "text"
             and isinstance(p.data["legacy"], str) and not p.legacy.is_json]
    legacy = corpus([p.data["legacy"] for p in prose], size)
    orchestrator = corpus([p.data["orchestrator"] for p in prose], size)
    return {"edit": (build_answer("openai_chat", text=legacy, finish="stop"),
                     build_answer("openai_chat", text=edited(legacy), finish="stop")),
            "rewrite": (build_answer("openai_chat", text=legacy, finish="stop"),
                        build_answer("openai_chat", text=orchestrator, finish="stop"))}


def timed(a: Answer, b: Answer, rounds: int) -> tuple[float, float, str]:
    for _ in range(min(50, rounds)):
        compare(a, b)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = compare(a, b)
        samples.append(time.perf_counter() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    return statistics.median(samples) * 1e3, p99 * 1e3, result.label


def timings(all_pairs: list[Pair], rounds: int) -> None:
    print(f"\ntime per pair (compare() only; {rounds} pairs at 1 KB, {rounds // 10} at 10 KB)")
    print(f"{'answers':>10} {'pair':>8} {'chars':>7} {'p50 ms':>8} {'p99 ms':>8}  label")
    for size, count in ((1000, rounds), (10_000, max(20, rounds // 10))):
        for name, (a, b) in workloads(all_pairs, size).items():
            p50, p99, label = timed(a, b, count)
            print(f"{size // 1000:>8}KB {name:>8} {len(a.text):>7} {p50:>8.3f} {p99:>8.3f}  "
                  f"{label}")
    print("aim: p50 <= 1 ms per 1 KB pair")


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
