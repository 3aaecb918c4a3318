"""The labelled scoring set: questions (the bank's and those outside it), answers with human
scores, the split by question, and the agreement measures. Used by bench/scoring.py and by the
scorer's fitting script (training/fit_scorer.py)."""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.scorer import QuestionSpec  # noqa: E402
from rooms.bank import bundled_banks  # noqa: E402

SET_DIR = ROOT / "tests" / "data" / "scoring"
SPLITS = SET_DIR / "splits.yaml"
FIRST_SET = ROOT / "tests" / "data" / "scoring_eval.yaml"
"""The set the first scorer was fitted on (79 answers to bank questions): train only, and only
for questions outside dev and test."""


@dataclass(frozen=True)
class Labelled:
    """One answer with its human score."""

    question: str
    kind: str
    score: float
    answer: str
    source: str


def bank_specs() -> dict[str, QuestionSpec]:
    return {
        q.slug: QuestionSpec(q.text, q.expected_answer, q.key_points, q.misconceptions)
        for bank in bundled_banks()
        for q in bank.questions
    }


def _files(directory: Path, pattern: str) -> list[Path]:
    return sorted(directory.glob(pattern))


def load(
    directory: Path = SET_DIR, pattern: str = "part-*.yaml"
) -> tuple[dict[str, QuestionSpec], list[Labelled]]:
    """Every question (bank and outside it) and every labelled answer of the set."""
    specs = bank_specs()
    answers: list[Labelled] = []
    for path in _files(directory, pattern):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for q in data.get("questions") or []:
            specs[str(q["id"])] = QuestionSpec(
                " ".join(str(q["text"]).split()),
                " ".join(str(q["expected_answer"]).split()),
                tuple(" ".join(str(p).split()) for p in q["key_points"]),
                tuple(" ".join(str(m).split()) for m in q.get("misconceptions") or ()),
            )
        for a in data["answers"]:
            answers.append(
                Labelled(
                    str(a["question"]),
                    str(a["kind"]),
                    float(a["score"]),
                    " ".join(str(a.get("answer") or "").split()),
                    path.name,
                )
            )
    return specs, answers


def splits(path: Path = SPLITS) -> dict[str, set[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {name: set(ids) for name, ids in data.items()}


def first_set_for_training(held_out: set[str]) -> list[Labelled]:
    """The first set's answers to questions that are not held out."""
    items = yaml.safe_load(FIRST_SET.read_text(encoding="utf-8"))
    kinds = {"wrong": "wrong", "silent": "silent"}
    return [
        Labelled(
            str(i["question"]),
            kinds.get(str(i["kind"]), str(i["kind"])),
            float(i["score"]),
            " ".join(str(i.get("answer") or "").split()),
            FIRST_SET.name,
        )
        for i in items
        if str(i["question"]) not in held_out
    ]


def folds(questions: Iterable[str], k: int) -> list[set[str]]:
    """`k` groups of questions, by a stable hash (for out-of-fold numbers)."""
    groups: list[set[str]] = [set() for _ in range(k)]
    ordered = sorted(set(questions), key=lambda q: hashlib.sha1(q.encode()).hexdigest())
    for i, q in enumerate(ordered):
        groups[i % k].add(q)
    return groups


def ranks(values: list[float]) -> list[float]:
    """Average ranks (ties share the mean rank)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else 0.0


@dataclass(frozen=True)
class Agreement:
    count: int
    spearman: float
    mae: float
    bias_by_kind: dict[str, float]

    def meets_goal(self) -> bool:
        """The issue's goal: Spearman >= 0.85, MAE <= 1.2, every kind within +-1.0."""
        return (
            self.spearman >= 0.85
            and self.mae <= 1.2
            and all(abs(b) <= 1.0 for b in self.bias_by_kind.values())
        )

    def line(self, label: str) -> str:
        kinds = ", ".join(f"{k} {v:+.1f}" for k, v in sorted(self.bias_by_kind.items()))
        goal = "goal met" if self.meets_goal() else "goal not met"
        return (
            f"{label:<18} n={self.count:<4} Spearman {self.spearman:.3f}  MAE {self.mae:.2f}  "
            f"({goal})\n{'':<18} mean signed error by kind: {kinds}"
        )


def agreement(items: list[Labelled], predicted: list[float]) -> Agreement:
    human = [i.score for i in items]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for item, p in zip(items, predicted, strict=True):
        by_kind[item.kind].append(p - item.score)
    mae = sum(abs(h - p) for h, p in zip(human, predicted, strict=True)) / len(items)
    return Agreement(
        len(items),
        spearman(human, predicted),
        mae,
        {k: sum(v) / len(v) for k, v in by_kind.items()},
    )


def score_all(
    items: list[Labelled],
    specs: dict[str, QuestionSpec],
    score: Callable[[QuestionSpec, str], float],
) -> list[float]:
    return [score(specs[i.question], i.answer) for i in items]
