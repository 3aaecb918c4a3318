"""The local scorer: key points checked one by one against the answer's sentences.

Whole-answer similarity separates on-topic from off-topic answers but not right from wrong, so
each key point is looked for in the answer's sentences (and pairs of sentences), with a lexical
check that the key point's own terms are there, a relevance gate, and a penalty when the best
matching sentence negates what the key point says. Thresholds were set on the labelled
evaluation set in tests/data/scoring_eval.yaml (bench/scoring.py prints the fit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from assistant.embeddings import Embedder
from assistant.scorer import QuestionSpec, Verdict, is_non_answer

_SENTENCE = re.compile(
    r"(?<=[.!?;])\s+|\s+(?:and then|but|so|because|which means)\s+", re.IGNORECASE
)
_WORD = re.compile(r"[a-z0-9+#]+")
_NEGATIONS = {
    "not",
    "no",
    "never",
    "cannot",
    "can't",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "won't",
    "without",
    "neither",
    "nor",
}
_STOP = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "is",
    "are",
    "be",
    "it",
    "its",
    "that",
    "this",
    "as",
    "by",
    "at",
    "from",
    "you",
    "your",
    "can",
    "so",
    "if",
    "when",
    "which",
    "what",
    "than",
    "then",
    "into",
    "each",
    "one",
    "only",
    "all",
    "any",
    "use",
    "uses",
    "used",
    "using",
    "also",
    "more",
    "most",
    "but",
    "not",
    "do",
    "does",
    "it's",
    "they",
    "them",
}


@dataclass(frozen=True)
class Tuning:
    """Fitted on tests/data/scoring_eval.yaml (79 answers): Spearman 0.86, MAE 1.4."""

    cover_low: float = 0.25
    """Similarity of a key point to its best sentence that counts as nothing."""
    cover_high: float = 0.65
    """...and as fully there."""
    lexical_weight: float = 0.65
    """Share of a key point's credit that comes from its own terms appearing in the answer."""
    relevance_gate: float = 0.40
    """Below this similarity to the question and expected answer, an answer is off topic (max 1)."""
    negation_penalty: float = 0.5
    """Credit lost when the best sentence negates what the key point states, or vice versa."""
    scale: float = 2.1
    offset: float = -5.0
    """Raw coverage (0-10) is mapped to scale * raw + offset, clipped: a monotone calibration
    that stretches partial coverage to the human scale without changing the ranking."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP and len(w) > 2}


def _negated(text: str) -> bool:
    words = set(re.findall(r"[a-z']+", text.lower().replace("’", "'")))
    return bool(words & _NEGATIONS) or any(w.endswith("n't") for w in words)


def split_sentences(answer: str) -> list[str]:
    parts = [p.strip(" ,") for p in _SENTENCE.split(answer) if p and len(p.split()) >= 3]
    pairs = [f"{a} {b}" for a, b in zip(parts, parts[1:], strict=False)]
    return parts + pairs or [answer]


class LocalScorer:
    name = "local"

    def __init__(self, embedder: Embedder | None = None, tuning: Tuning | None = None) -> None:
        self._embedder = embedder
        self.tuning = tuning or Tuning()

    def warm_up(self) -> None:
        """Load the model now rather than on the first answer."""
        self.embedder.embed(["warm up"])

    def prepare(self, answer_so_far: str) -> None:
        """Embed the sentences of an answer still being given, so that scoring it when the
        recruiter moves on only embeds what came since (a 230-word answer: 0.51 s -> 0.16 s)."""
        if not is_non_answer(answer_so_far):
            self.embedder.embed(split_sentences(answer_so_far))

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    def score(self, question: QuestionSpec, answer: str) -> Verdict:
        points = list(question.key_points)
        if is_non_answer(answer):
            return Verdict(
                0.0, "No answer to score: silence or “I don't know”.", [], points, scorer=self.name
            )
        t = self.tuning
        sentences = split_sentences(answer)
        vectors = self.embedder.embed(
            points + sentences + [answer, f"{question.text} {question.expected_answer}"]
        )
        kp, sv = vectors[: len(points)], vectors[len(points) : len(points) + len(sentences)]
        whole, reference = vectors[-2], vectors[-1]
        sims = kp @ sv.T  # key point x sentence
        relevance = float(max(whole @ reference, sims.max(initial=0.0)))
        answer_terms = _terms(answer)
        credits: list[float] = []
        for i, point in enumerate(points):
            best = int(np.argmax(sims[i]))
            semantic = float(
                np.clip((sims[i, best] - t.cover_low) / (t.cover_high - t.cover_low), 0, 1)
            )
            terms = _terms(point)
            lexical = len(terms & answer_terms) / len(terms) if terms else semantic
            credit = (1 - t.lexical_weight) * semantic + t.lexical_weight * lexical
            if _negated(sentences[best]) != _negated(point):
                credit *= 1 - t.negation_penalty
            credits.append(credit)
        covered = [p for p, c in zip(points, credits, strict=True) if c >= 0.5]
        missing = [p for p in points if p not in covered]
        raw = 10.0 * float(np.mean(credits)) if credits else 0.0
        score = float(np.clip(t.scale * raw + t.offset, 0.0, 10.0))
        if relevance < t.relevance_gate:
            score = min(score, 1.0)
            rationale = "The answer does not address the question."
        elif not covered:
            rationale = "None of the key points came through clearly."
        elif not missing:
            rationale = f"Covers all {len(points)} key points."
        else:
            rationale = f"Covers {len(covered)} of {len(points)} key points; missing: {missing[0]}"
        return Verdict(round(score, 1), rationale, covered, missing, scorer=self.name)
