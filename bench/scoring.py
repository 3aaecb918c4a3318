"""How well the AI assistant's scores agree with human scores, on answers to questions the
scorer was not fitted on.

Run: .venv/bin/python bench/scoring.py [--test] [--show] [--scorer local|llm] [--overrides URL]

The labelled set (tests/data/scoring/part-*.yaml: 480 answers to 48 questions, 16 of them
outside the bank) is split by question (tests/data/scoring/splits.yaml). The local scorer's
weights are fitted on train only (training/fit_scorer.py). Printed per split:
Spearman, mean absolute error and the mean signed error of each kind of answer; train both
in-sample and out-of-fold (5 folds by question, weights refitted without each fold); test only
with --test (read it once, at the end). Also a reliability table of the stated confidence and
the time per answer. Goal: Spearman >= 0.85, MAE <= 1.2, every kind within +-1.0.

--overrides DATABASE_URL measures agreement with the scores recruiters typed over the AI's.
--language ru reports the multilingual scorer on the Russian set (bench/scoring_multilingual.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))

from fit_scorer import compute_evidence, out_of_fold, predict, train_items  # noqa: E402
from scoring_data import Labelled, agreement, load, spearman, splits  # noqa: E402

from assistant.local import LocalScorer  # noqa: E402
from assistant.scorer import QuestionSpec  # noqa: E402


def reliability(rows: list[tuple[float, float]], within: float = 2.0) -> list[str]:
    """(stated confidence, absolute error) -> per confidence band: answers, share within."""
    bands = [(0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)]
    lines = ["  confidence   answers   mean stated   within 2 points"]
    for low, high in bands:
        inside = [(c, e) for c, e in rows if low <= c < high]
        if not inside:
            continue
        stated = sum(c for c, _ in inside) / len(inside)
        right = sum(e <= within for _, e in inside) / len(inside)
        lines.append(
            f"  {low:.1f}-{min(high, 1.0):.1f}    {len(inside):>6}   {stated:>10.2f}   {right:>14.2f}"
        )
    return lines


async def overrides(url: str) -> None:
    from sqlalchemy import select

    from rooms.db import make_engine, make_sessionmaker
    from rooms.models import Score

    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        rows = list(await session.scalars(select(Score).where(Score.override.is_not(None))))
    await engine.dispose()
    if len(rows) < 2:
        print(f"{len(rows)} overridden scores: too few to measure agreement")
        return
    ai = [r.score for r in rows]
    human = [float(r.override) for r in rows if r.override is not None]
    mae = sum(abs(a - h) for a, h in zip(ai, human, strict=True)) / len(rows)
    print(
        f"recruiters' overrides: {len(rows)} answers, Spearman {spearman(human, ai):.3f}, "
        f"mean absolute error {mae:.2f}, AI higher by {sum(ai) / len(ai) - sum(human) / len(human):+.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test", action="store_true", help="also report the test split")
    parser.add_argument("--show", action="store_true", help="print every answer's scores")
    parser.add_argument("--overrides", metavar="DATABASE_URL")
    parser.add_argument(
        "--language",
        default="en",
        help="ru: the multilingual scorer on the Russian labelled set (tests/data/scoring/ru/)",
    )
    args = parser.parse_args()
    if args.overrides:
        asyncio.run(overrides(args.overrides))
        return
    if args.language != "en":
        from scoring_multilingual import report

        report(args.language, args.test, args.show)
        return

    specs, items = load()
    split = splits()
    scorer = LocalScorer()
    started = time.perf_counter()
    scorer.warm_up()
    loaded = time.perf_counter() - started
    names = ["dev"] + (["test"] if args.test else [])
    chosen: dict[str, list[Labelled]] = {
        n: [i for i in items if i.question in split[n]] for n in names
    }
    train = train_items(items, split)
    started = time.perf_counter()
    evidence = {n: compute_evidence(scorer, specs, chosen[n]) for n in names}
    per_answer = (time.perf_counter() - started) / max(1, sum(len(v) for v in chosen.values()))
    train_evidence = compute_evidence(scorer, specs, train)
    print(f"local scorer, {scorer.weights.fitted_on}")
    fitted = [predict(scorer, specs, i, e) for i, e in zip(train, train_evidence, strict=True)]
    print(agreement(train, fitted).line("train (in-sample)"))
    oof, _ = out_of_fold(specs, train, train_evidence)
    print(agreement(train, oof).line("train out-of-fold"))
    rows = [
        (scorer.combine(specs[i.question], e).confidence if e else 1.0, abs(p - i.score))
        for i, e, p in zip(train, train_evidence, oof, strict=True)
    ]
    for n in names:
        predicted = [
            predict(scorer, specs, i, e) for i, e in zip(chosen[n], evidence[n], strict=True)
        ]
        print(agreement(chosen[n], predicted).line(n))
        rows += [
            (scorer.combine(specs[i.question], e).confidence if e else 1.0, abs(p - i.score))
            for i, e, p in zip(chosen[n], evidence[n], predicted, strict=True)
        ]
        if args.show:
            show(specs, scorer, chosen[n], evidence[n])
    print("reliability of the stated confidence (train out-of-fold, " + ", ".join(names) + "):")
    print("\n".join(reliability(rows)))
    print(
        f"model load {loaded * 1000:.0f} ms; {per_answer * 1000:.0f} ms per answer on this machine"
    )


def show(
    specs: dict[str, QuestionSpec], scorer: LocalScorer, items: list[Labelled], evidence: list
) -> None:  # type: ignore[type-arg]
    for item, ev in zip(items, evidence, strict=True):
        verdict = scorer.combine(specs[item.question], ev) if ev else None
        got = verdict.score if verdict else 0.0
        print(f"  {item.kind:>13} human {item.score:>4.0f} machine {got:>4.1f}  {item.question}")


if __name__ == "__main__":
    main()
