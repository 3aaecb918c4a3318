"""Fit the multilingual scorer's weights (assistant/models/multilingual.json) on the train split
of the Russian labelled set (tests/data/scoring/ru/, split by question in splits.yaml).

Gradient-boosted regression trees of the human score on the evidence features, with the English
scorer's settings (training/fit_scorer.py: 150 rounds of depth 3 at 0.05); the off-topic gate
and the confidence's calibration (P(|error| <= 2) on the doubt measure, from
leave-one-question-out residuals) on train as well. Dev and test are never read here:
bench/scoring.py --language ru reports them. (A ridge regression of four of the measures
reached Spearman 0.70 out of fold on train, the trees of all seven 0.82.)

Run: .venv/bin/python training/fit_multilingual.py   (needs the claim head:
training/train_claims_e5.py)
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "training"))

from fit_scorer import DEPTH, LEARNING_RATE, fit_trees  # noqa: E402
from scoring_data import Labelled, spearman  # noqa: E402

from assistant.multilingual import FEATURES, WEIGHTS, Evidence, MultilingualScorer, Weights  # noqa: E402
from assistant.scorer import QuestionSpec, is_non_answer  # noqa: E402
from rooms.bank import bundled_banks, bundled_banks_in  # noqa: E402

SET_DIR = ROOT / "tests" / "data" / "scoring" / "ru"


def load(language: str = "ru") -> tuple[dict[str, QuestionSpec], list[Labelled]]:
    """The banks' questions of `language` (their interview language set) and the labelled
    answers of the set."""
    specs = {
        q.slug: QuestionSpec(q.text, q.expected_answer, q.key_points, q.misconceptions, language)
        for bank in bundled_banks_in(language)
        for q in bank.questions
    }
    items = []
    for path in sorted((ROOT / "tests" / "data" / "scoring" / language).glob("part-*.yaml")):
        for a in yaml.safe_load(path.read_text(encoding="utf-8"))["answers"]:
            items.append(
                Labelled(
                    str(a["question"]),
                    str(a["kind"]),
                    float(a["score"]),
                    " ".join(str(a.get("answer") or "").split()),
                    path.name,
                )
            )
    return specs, items


def splits(language: str = "ru") -> dict[str, object]:
    path = ROOT / "tests" / "data" / "scoring" / language / "splits.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def english_specs(language: str = "ru") -> dict[str, QuestionSpec]:
    """The English bank's questions, to be answered in `language`."""
    return {
        q.slug: QuestionSpec(q.text, q.expected_answer, q.key_points, q.misconceptions, language)
        for bank in bundled_banks()
        for q in bank.questions
    }


def compute_evidence(
    scorer: MultilingualScorer, specs: dict[str, QuestionSpec], items: list[Labelled]
) -> list[Evidence | None]:
    return [
        None if is_non_answer(i.answer) else scorer.evidence(specs[i.question], i.answer)
        for i in items
    ]


def predict(
    scorer: MultilingualScorer,
    specs: dict[str, QuestionSpec],
    item: Labelled,
    evidence: Evidence | None,
    weights: Weights | None = None,
) -> float:
    if evidence is None:
        return 0.0
    judge = (
        scorer
        if weights is None
        else MultilingualScorer(scorer.embedder, scorer.head, weights, weights)
    )
    return judge.combine(specs[item.question], evidence).score


def fit_weights(
    scorer: MultilingualScorer,
    specs: dict[str, QuestionSpec],
    items: list[Labelled],
    evidence: list[Evidence | None],
) -> Weights:
    """Trees fitted on `items` (a gate chosen among the train answers' relevances)."""
    intercept, trees = fit_trees(items, evidence, FEATURES)
    base = Weights(
        intercept,
        (0.0,) * len(FEATURES),  # unused with trees
        relevance_gate=0.0,
        trees=trees,
        learning_rate=LEARNING_RATE,
    )
    relevances = sorted({round(e.features["relevance"], 3) for e in evidence if e})
    best, best_error = base, math.inf
    for gate in [0.0, *relevances[: len(relevances) // 3]]:
        trial = replace(base, relevance_gate=gate)
        error = float(
            np.mean(
                [
                    abs(predict(scorer, specs, i, e, trial) - i.score)
                    for i, e in zip(items, evidence, strict=True)
                ]
            )
        )
        if error < best_error - 1e-9:
            best, best_error = trial, error
    return best


def out_of_fold(
    scorer: MultilingualScorer,
    specs: dict[str, QuestionSpec],
    items: list[Labelled],
    evidence: list[Evidence | None],
) -> list[float]:
    """Each question's answers predicted by weights fitted without that question."""
    predicted = [0.0] * len(items)
    for question in sorted({i.question for i in items}):
        inside = [k for k, i in enumerate(items) if i.question != question]
        weights = fit_weights(
            scorer, specs, [items[k] for k in inside], [evidence[k] for k in inside]
        )
        for k, item in enumerate(items):
            if item.question == question:
                predicted[k] = predict(scorer, specs, item, evidence[k], weights)
    return predicted


def calibrate_confidence(
    evidence: list[Evidence | None], errors: list[float]
) -> tuple[float, float]:
    """Logistic regression of P(|error| <= 2) on the doubt measure (gradient descent)."""
    doubt = np.array([e.doubt if e else 0.0 for e in evidence])
    right = np.array([err <= 2.0 for err in errors], dtype=float)
    a, b = 0.0, 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(a + b * doubt)))
        a -= 0.5 * float(np.mean(p - right))
        b -= 0.5 * float(np.mean((p - right) * doubt))
    return a, b


def fit_all(
    scorer: MultilingualScorer,
    specs: dict[str, QuestionSpec],
    items: list[Labelled],
    label: str,
) -> Weights:
    """Weights fitted on `items`, the confidence calibrated on their leave-one-question-out
    errors."""
    evidence = compute_evidence(scorer, specs, items)
    y = [i.score for i in items]
    oof = out_of_fold(scorer, specs, items, evidence)
    errors = [abs(a - b) for a, b in zip(oof, y, strict=True)]
    print(f"{label}: out-of-fold Spearman {spearman(y, oof):.3f}, MAE {np.mean(errors):.2f}")
    weights = fit_weights(scorer, specs, items, evidence)
    questions = len({i.question for i in items})
    return replace(
        weights,
        confidence=calibrate_confidence(evidence, errors),
        fitted_on=(
            f"{len(weights.trees)} trees of depth {DEPTH} on the Russian set's train split"
            f"{', against English rubrics' if 'English' in label else ''}, "
            f"{len(items)} answers to {questions} questions"
        ),
    )


def show(weights: Weights) -> None:
    print(f"  {weights.fitted_on}")
    print(f"  base {weights.intercept:+.2f}, off-topic gate {weights.relevance_gate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, help="keep the sentence vectors in this file")
    args = parser.parse_args()
    specs, items = load()
    split = splits()
    train = [i for i in items if i.question in set(split["train"])]  # type: ignore[call-overload]
    scorer = MultilingualScorer(weights=Weights())
    if args.cache and args.cache.exists():
        scorer.embedder._cache.update(pickle.loads(args.cache.read_bytes()))
    weights = fit_all(scorer, specs, train, "Russian rubrics")
    mapping = {k: v for k, v in dict(split["english_rubric"]).items() if v}  # type: ignore[call-overload]
    english = english_specs()
    crossed_specs = {ru: english[en] for ru, en in mapping.items()}
    crossed = [i for i in train if i.question in crossed_specs]
    cross = fit_all(scorer, crossed_specs, crossed, "English rubrics")
    if args.cache:
        args.cache.write_bytes(pickle.dumps(scorer.embedder._cache))
    data: dict[str, object] = {**asdict(weights), "features": list(FEATURES)}
    data["cross_lingual"] = asdict(cross)
    WEIGHTS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {WEIGHTS.relative_to(ROOT)}")
    show(weights)
    show(cross)


if __name__ == "__main__":
    main()
