"""How well the local scorer agrees with human scores on the labelled evaluation set.

Run: .venv/bin/python bench/scoring.py [--scorer local|llm] [--show]
Prints Spearman's rank correlation and the mean absolute error against the human scores in
tests/data/scoring_eval.yaml, per kind of answer too. The goal is Spearman >= 0.8.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.local import LocalScorer  # noqa: E402
from assistant.scorer import QuestionSpec, Scorer  # noqa: E402
from rooms.bank import bundled_banks  # noqa: E402

EVAL = ROOT / "tests" / "data" / "scoring_eval.yaml"


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


def load_eval() -> list[dict[str, object]]:
    return list(yaml.safe_load(EVAL.read_text()))


def questions() -> dict[str, QuestionSpec]:
    return {
        q.slug: QuestionSpec(q.text, q.expected_answer, q.key_points)
        for bank in bundled_banks()
        for q in bank.questions
    }


def evaluate(scorer: Scorer, show: bool = False) -> tuple[float, float, dict[str, float]]:
    """(spearman, mean absolute error, mean error per kind)."""
    specs = questions()
    human: list[float] = []
    machine: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    for item in load_eval():
        verdict = scorer.score(specs[str(item["question"])], str(item["answer"] or ""))
        human.append(float(item["score"]))  # type: ignore[arg-type]
        machine.append(verdict.score)
        by_kind[str(item["kind"])].append(verdict.score - float(item["score"]))  # type: ignore[arg-type]
        if show:
            print(
                f"{item['kind']:>9} human {item['score']:>2} machine {verdict.score:>4}  {item['question']}"
            )
    mae = sum(abs(h - m) for h, m in zip(human, machine, strict=True)) / len(human)
    return spearman(human, machine), mae, {k: sum(v) / len(v) for k, v in by_kind.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--show", action="store_true", help="print every answer's scores")
    args = parser.parse_args()
    started = time.perf_counter()
    scorer = LocalScorer()
    scorer.embedder.embed(["warm up"])
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    rho, mae, bias = evaluate(scorer, args.show)
    elapsed = time.perf_counter() - started
    count = len(load_eval())
    print(f"local scorer on {count} labelled answers")
    print(f"  Spearman {rho:.3f}   mean absolute error {mae:.2f} points (0-10 scale)")
    print(
        "  mean signed error by kind: "
        + ", ".join(f"{k} {v:+.1f}" for k, v in sorted(bias.items()))
    )
    print(
        f"  model load {loaded * 1000:.0f} ms; {elapsed / count * 1000:.0f} ms per answer on this machine"
    )


if __name__ == "__main__":
    main()
