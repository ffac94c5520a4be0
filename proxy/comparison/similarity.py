"""Text similarity and embedding similarity, as divergences in [0, 1].

Layer: pure core. Text uses rapidfuzz (C++, bit-parallel Levenshtein): the divergence is
1 - max(normalised edit similarity, token-sort similarity). The second term forgives
reordered sentences ("Paris is the capital of France" / "The capital of France is
Paris"); no token-set measure is used because it scores a short answer contained in a
long one as equal. Case and runs of whitespace are ignored unless the policy says
otherwise. Cost is O(n*m/64) for texts of n and m characters, so both are cut to
`max_chars` (default 10 000: about 0.1 ms for a 1 KB answer, a few milliseconds at
the bound); a cut is reported so the comparison is marked truncated.

Embeddings: 1 - mean cosine similarity of the vectors pair by pair (a negative cosine
counts as 0). A different count or dimension is a divergence of 1. At most
`MAX_EMBEDDING_FLOATS` floats per side are compared (pure Python, ~20 ms at the bound).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

from rapidfuzz import fuzz, utils

MAX_EMBEDDING_FLOATS = 200_000


def normalise_text(text: str, *, case_sensitive: bool = False) -> str:
    collapsed = " ".join(text.split())
    return collapsed if case_sensitive else collapsed.casefold()


def text_divergence(a: str, b: str, *, max_chars: int = 10_000,
                    case_sensitive: bool = False) -> tuple[float, bool]:
    """(divergence, cut): 0 for the same text up to case and whitespace, 1 for nothing
    in common; `cut` says the texts were longer than `max_chars` and compared in part."""
    if a == b:
        return 0.0, False
    raw_cut = len(a) > 2 * max_chars or len(b) > 2 * max_chars
    a = normalise_text(a[:2 * max_chars], case_sensitive=case_sensitive)
    b = normalise_text(b[:2 * max_chars], case_sensitive=case_sensitive)
    if a == b and not raw_cut:
        return 0.0, False
    if not a or not b:
        return 1.0, False
    cut = raw_cut or len(a) > max_chars or len(b) > max_chars
    a, b = a[:max_chars], b[:max_chars]
    processor = None if case_sensitive else utils.default_process
    similarity = max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b, processor=processor))
    return round(1.0 - similarity / 100.0, 6), cut


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot: float = sum(map(operator.mul, a, b))
    norm = math.sqrt(sum(map(operator.mul, a, a))) * math.sqrt(sum(map(operator.mul, b, b)))
    if norm == 0.0:
        return 1.0 if not any(a) and not any(b) else 0.0
    return dot / norm


def embedding_divergence(a: Sequence[Sequence[float]],
                         b: Sequence[Sequence[float]]) -> tuple[float, bool]:
    """(divergence, cut): see the module docstring."""
    if len(a) != len(b):
        return 1.0, False
    if not a:
        return 0.0, False
    budget, total, compared, cut = MAX_EMBEDDING_FLOATS, 0.0, 0, False
    for left, right in zip(a, b, strict=True):
        if len(left) != len(right):
            return 1.0, cut
        if budget < len(left):
            cut = True
            break
        budget -= len(left)
        total += max(0.0, min(1.0, cosine(left, right)))
        compared += 1
    if compared == 0:
        return 0.0, True
    return round(1.0 - total / compared, 6), cut
