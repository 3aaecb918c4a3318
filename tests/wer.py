"""Word error rate, for printing how well speech came through."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    """Lower-case words, Latin or Cyrillic (ё read as е, as most Russian text writes it)."""
    return re.findall(r"[a-z0-9'а-я]+", text.lower().replace("-", " ").replace("ё", "е"))


def wer(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words, divided by the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)
