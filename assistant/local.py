"""The local scorer: each key point checked against the answer's sentences for support and for
contradiction, the rubric's misconceptions looked for, and the evidence combined into a score
and a confidence by weights fitted on the labelled set's train split.

Sentence embeddings (all-MiniLM-L6-v2) find the sentences that talk about each key point; the
claim checker (a cross-encoder trained for this, assistant/claims.py) reads each such pair and
says whether the sentence supports the point, contradicts it, or does neither: similarity alone
cannot tell a confident contradiction from a paraphrase. The weights, thresholds and the
confidence calibration live in assistant/models/scorer.json, written by
training/fit_scorer.py; bench/scoring.py prints how they do on answers to questions
they were not fitted on.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.claims import ClaimChecker
from assistant.embeddings import Embedder
from assistant.grader import Grader
from assistant.scorer import QuestionSpec, Verdict, is_non_answer, reference_text

WEIGHTS = Path(__file__).parent / "models" / "scorer.json"
CONTRADICTED_AT = 0.8
"""A key point's contradiction from which the rationale names it (if nothing supports it)."""
OPPOSED_AT = 0.5
"""A misconception contradicted this firmly by a key point the answer states is not named."""
MISCONCEPTION_ONLY_AT_MOST = 2.0
"""The score of an answer that asserts a misconception and covers no key point, at most
(chosen out of fold on train among 2, 3 and 4: the same there, and no kind of answer worse)."""
CANDIDATES = 3
"""Sentences per key point read by the claim checker (the most similar ones)."""

_SENTENCE = re.compile(
    r"(?<=[.!?;])\s+|\s+(?:and then|but|so|because|which means|whereas|while)\s+", re.IGNORECASE
)
_WORD = re.compile(r"[a-z0-9+#]+")
_STOP = frozenset(
    [
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
    ]
)
FEATURES = (
    "support",
    "contradiction",
    "worst_contradiction",
    "similarity",
    "terms",
    "misconception",
    "relevance",
    "length",
    "support_x_relevance",
    "grader",
)


Tree = float | list[Any]
"""A regression tree: a leaf's value, or [feature index, threshold, at or below, above]."""


def tree_value(tree: Tree, x: Any) -> float:
    node = tree
    while isinstance(node, list):
        feature, threshold, below, above = node
        node = below if x[int(feature)] <= threshold else above
    return float(node)


@dataclass(frozen=True)
class Weights:
    """The fitted combination of the features into a score, clipped to 0-10: gradient-boosted
    regression trees when `trees` is set (training/fit_scorer.py), else the linear
    intercept + coefficients . features (the prior used without a fitted file)."""

    intercept: float = 0.0
    coefficients: tuple[float, ...] = (8.0, -4.0, -2.0, 0.0, 2.0, -3.0, 0.0, 0.0, 0.0, 0.0)
    relevance_gate: float = 0.35
    """Below this similarity to the question and expected answer, off topic: at most 1."""
    covered_at: float = 0.5
    """A key point's support from which it counts as covered."""
    misconception_at: float = 0.6
    """A misconception's support from which the answer asserts it."""
    confidence: tuple[float, float] = (2.0, -4.0)
    """Logistic calibration of the confidence on the doubt measure: P(|error| <= 2)."""
    fitted_on: str = ""
    trees: tuple[Tree, ...] = ()
    """score = intercept + learning_rate x the sum of the trees' values."""
    learning_rate: float = 0.0

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> Weights:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            **fitted_fields(data),
            trees=tuple(data.get("trees", ())),
            learning_rate=float(data.get("learning_rate", 0.0)),
        )

    def raw_score(self, x: Any) -> float:
        """The combination of the features `x` (in FEATURES order), before clipping."""
        if self.trees:
            return self.intercept + self.learning_rate * sum(tree_value(t, x) for t in self.trees)
        return self.intercept + float(np.dot(self.coefficients, x))


def fitted_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a fitted weights file (training/fit_scorer.py, fit_multilingual.py)."""
    return {
        "intercept": float(data["intercept"]),
        "coefficients": tuple(float(c) for c in data["coefficients"]),
        "relevance_gate": float(data["relevance_gate"]),
        "covered_at": float(data["covered_at"]),
        "misconception_at": float(data["misconception_at"]),
        "confidence": (float(data["confidence"][0]), float(data["confidence"][1])),
        "fitted_on": str(data.get("fitted_on", "")),
    }


@dataclass
class Evidence:
    """What the models found in one answer, before weighting."""

    features: dict[str, float]
    support: list[float]
    """Per key point: the best support among its candidate sentences."""
    contradiction: list[float]
    """Per key point: the strongest contradiction among them."""
    contradicting: list[str]
    """Per key point: the sentence that contradicts it most."""
    misconceptions: list[tuple[str, float, str]] = field(default_factory=list)
    """(misconception, support, the sentence) for each of the rubric's."""
    opposed: list[float] = field(default_factory=list)
    """Per misconception: how firmly the answer states a key point that contradicts it."""
    doubt: float = 0.0
    """How torn the evidence is (0: clear-cut), the input of the confidence."""
    doubt_sentence: str = ""
    sentences: list[str] = field(default_factory=list)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP and len(w) > 2}


WINDOW_WORDS = 20
"""A clause longer than 1.5 windows (speech recognition often writes no punctuation) is read in
overlapping windows of this many words: the claim checker was trained on sentences."""


def _windows(part: str) -> list[str]:
    words = part.split()
    if len(words) <= WINDOW_WORDS * 3 // 2:
        return [part]
    step = WINDOW_WORDS // 2
    return [" ".join(words[i : i + WINDOW_WORDS]) for i in range(0, len(words) - step, step)]


def split_sentences(answer: str, clauses: re.Pattern[str] = _SENTENCE) -> list[str]:
    """Clauses of three words or more (long ones as windows), and each pair of neighbours (a
    point may span two). `clauses` splits them (a language's own conjunctions)."""
    parts = [
        w
        for p in clauses.split(answer)
        if p and len(p.split()) >= 3
        for w in _windows(p.strip(" ,"))
    ]
    pairs = [f"{a} {b}" for a, b in zip(parts, parts[1:], strict=False)]
    return parts + pairs or [answer]


class LocalScorer:
    """Scores an answer against its question's key points and misconceptions, offline."""

    name = "local"

    def __init__(
        self,
        embedder: Embedder | None = None,
        claims: ClaimChecker | None = None,
        weights: Weights | None = None,
        grader: Grader | None = None,
    ) -> None:
        self._embedder = embedder
        self._claims = claims
        self._grader = grader
        self.weights = weights or Weights.load()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    @property
    def claims(self) -> ClaimChecker:
        if self._claims is None:
            self._claims = ClaimChecker()
        return self._claims

    @property
    def grader(self) -> Grader:
        if self._grader is None:
            self._grader = Grader()
        return self._grader

    def warm_up(self) -> None:
        """Load the models now rather than on the first answer."""
        self.embedder.embed(["warm up"])
        self.claims.check([("warm up", "warm up")])
        self.grader.grade(QuestionSpec("q", "a", ("p",)), "warm up")

    def prepare(self, answer_so_far: str) -> None:
        """Embed the sentences of an answer still being given, so that scoring it when the
        recruiter moves on only embeds what came since."""
        if not is_non_answer(answer_so_far):
            self.embedder.embed(split_sentences(answer_so_far))

    def prepare_question(self, question: QuestionSpec) -> None:
        """Embed a question's key points, misconceptions and reference while it is answered:
        scoring the answer then embeds only what the candidate said last."""
        self.embedder.embed(
            [*question.key_points, *question.misconceptions, reference_text(question)]
        )

    def evidence(self, question: QuestionSpec, answer: str) -> Evidence:
        """Every key point's support and contradiction, the misconceptions asserted, and the
        answer-level measures the weights combine."""
        points = list(question.key_points)
        wrong = list(question.misconceptions)
        sentences = split_sentences(answer)
        vectors = self.embedder.embed(
            points + wrong + sentences + [answer, reference_text(question)]
        )
        kp = vectors[: len(points)]
        mv = vectors[len(points) : len(points) + len(wrong)]
        sv = vectors[len(points) + len(wrong) : -2]
        whole, reference = vectors[-2], vectors[-1]
        point_sims = kp @ sv.T
        wrong_sims = mv @ sv.T if wrong else np.zeros((0, len(sentences)))
        relevance = float(max(whole @ reference, point_sims.max(initial=0.0)))

        def candidates(sims: np.ndarray) -> list[int]:
            return [int(i) for i in np.argsort(-sims)[:CANDIDATES]]

        pairs: list[tuple[str, str]] = []
        for claim, sims in [
            *zip(points, point_sims, strict=True),
            *zip(wrong, wrong_sims, strict=True),
        ]:
            pairs.extend((claim, sentences[i]) for i in candidates(sims))
        probs = self.claims.check(pairs)

        support, contradiction, contradicting = [], [], []
        torn_points: list[float] = []
        most_torn, doubt_sentence = -1.0, ""
        row = 0
        for sims in point_sims:
            chosen = candidates(sims)
            block = probs[row : row + len(chosen)]
            row += len(chosen)
            best = int(np.argmax(block[:, 0]))
            worst = int(np.argmax(block[:, 1]))
            support.append(float(block[best, 0]))
            contradiction.append(float(block[worst, 1]))
            contradicting.append(sentences[chosen[worst]])
            # Torn: the same point both supported and contradicted, or its support near even.
            s, c = float(block[best, 0]), float(block[worst, 1])
            torn = max(2 * min(s, c), 1 - abs(2 * s - 1))
            torn_points.append(torn)
            if torn > most_torn:
                most_torn, doubt_sentence = torn, sentences[chosen[worst if c > s else best]]
        doubt = float(np.mean(torn_points)) if torn_points else 0.0
        asserted: list[tuple[str, float, str]] = []
        opposed = self._opposition(wrong, points, support)
        for claim, sims in zip(wrong, wrong_sims, strict=True):
            chosen = candidates(sims)
            block = probs[row : row + len(chosen)]
            row += len(chosen)
            best = int(np.argmax(block[:, 0]))
            asserted.append((claim, float(block[best, 0]), sentences[chosen[best]]))

        semantic = np.clip((point_sims.max(axis=1) - 0.25) / 0.4, 0, 1) if len(points) else []
        answer_terms = _terms(answer)
        lexical = [len(_terms(p) & answer_terms) / max(1, len(_terms(p))) for p in points] or [0.0]
        mean_support = float(np.mean(support)) if support else 0.0
        features = {
            "support": mean_support,
            "contradiction": float(np.mean(contradiction)) if contradiction else 0.0,
            "worst_contradiction": max(contradiction, default=0.0),
            "similarity": float(np.mean(semantic)) if len(points) else 0.0,
            "terms": float(np.mean(lexical)),
            "misconception": max((a[1] for a in asserted), default=0.0),
            "relevance": relevance,
            "length": math.log1p(len(answer.split())) / math.log1p(200),
            "support_x_relevance": mean_support * relevance,
            "grader": self.grader.grade(question, answer) / 10,
        }
        return Evidence(
            features,
            support,
            contradiction,
            contradicting,
            asserted,
            opposed,
            doubt,
            doubt_sentence,
            sentences,
        )

    def _opposition(self, wrong: list[str], points: list[str], support: list[float]) -> list[float]:
        """Per misconception, how firmly the answer states a key point that contradicts it
        (support of the point x the checker's contradiction of the misconception by it).

        An answer that clearly says "defaults are evaluated once" does not also believe "a
        fresh list on every call", whatever a garbled sentence of it seems to say: the claim
        checker errs on single sentences, rarely on the rubric's own clean statements."""
        if not wrong or not points:
            return [0.0] * len(wrong)
        against = self.claims.check([(m, p) for m in wrong for p in points])[:, 1]
        per = against.reshape(len(wrong), len(points)) * np.array(support)
        return [float(v) for v in per.max(axis=1)]

    def combine(self, question: QuestionSpec, evidence: Evidence) -> Verdict:
        """The verdict the fitted weights make of the evidence."""
        w = self.weights
        points = list(question.key_points)
        x = np.array([evidence.features[name] for name in FEATURES])
        score = float(np.clip(w.raw_score(x), 0.0, 10.0))
        relevance = evidence.features["relevance"]
        off_topic = relevance < w.relevance_gate
        if off_topic:
            score = min(score, 1.0)
        covered = [
            p
            for p, s, c in zip(points, evidence.support, evidence.contradiction, strict=True)
            if s >= w.covered_at and s > c
        ]
        # Named only to explain a low score: the claim checker errs on single sentences.
        contradicted = [
            p
            for p, s, c in zip(points, evidence.support, evidence.contradiction, strict=True)
            if c >= CONTRADICTED_AT and s < w.covered_at and score < 5
        ]
        missing = [p for p in points if p not in covered]
        # Named only when the answer does not also firmly state a key point that contradicts it:
        # a garbled sentence of a right answer can look like a misconception to the checker.
        opposed = evidence.opposed or [0.0] * len(evidence.misconceptions)
        wrong = [
            m
            for (m, s, _), against in zip(evidence.misconceptions, opposed, strict=True)
            if s >= w.misconception_at and against < OPPOSED_AT and score < 7
        ]
        if wrong and not covered:
            score = min(score, MISCONCEPTION_ONLY_AT_MOST)
        a, b = w.confidence
        confidence = 1 / (1 + math.exp(-(a + b * evidence.doubt)))
        doubt = evidence.doubt_sentence
        if wrong:
            doubt = next(s for m, p, s in evidence.misconceptions if m == wrong[0])
        if off_topic:
            rationale = "The answer does not address the question."
        elif wrong:
            rationale = f"Asserts a common misconception: {wrong[0]}"
        elif contradicted:
            rationale = f"Contradicts a key point: {contradicted[0]}"
        elif not covered:
            rationale = "None of the key points came through clearly."
        elif not missing:
            rationale = f"Covers all {len(points)} key points."
        else:
            rationale = f"Covers {len(covered)} of {len(points)} key points; missing: {missing[0]}"
        return Verdict(
            round(score, 1),
            rationale,
            covered,
            missing,
            scorer=self.name,
            confidence=round(confidence, 2),
            doubt=doubt,
            misconceptions=wrong,
        )

    def score(self, question: QuestionSpec, answer: str) -> Verdict:
        points = list(question.key_points)
        if is_non_answer(answer):
            return Verdict(
                0.0, "No answer to score: silence or “I don't know”.", [], points, scorer=self.name
            )
        return self.combine(question, self.evidence(question, answer))
