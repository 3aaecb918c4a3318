"""bench/scoring.py --language ru: the multilingual scorer on the Russian labelled set
(tests/data/scoring/ru/: 320 answers to 32 questions, split by question), against the Russian
key points and, for the same answers, against the English bank's question on the same subject
(a Russian answer to an English rubric)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training"))

from fit_multilingual import (  # noqa: E402
    compute_evidence,
    english_specs,
    load,
    out_of_fold,
    predict,
    splits,
)
from scoring_data import Labelled, agreement  # noqa: E402

from assistant.multilingual import MultilingualScorer  # noqa: E402


def report(language: str, test: bool, show: bool) -> None:
    specs, items = load(language)
    split = splits(language)
    scorer = MultilingualScorer()
    started = time.perf_counter()
    scorer.warm_up()
    loaded = time.perf_counter() - started
    print(f"multilingual scorer ({language}), {scorer.weights.fitted_on}")
    train = [i for i in items if i.question in set(split["train"])]  # type: ignore[call-overload]
    train_evidence = compute_evidence(scorer, specs, train)
    fitted = [predict(scorer, specs, i, e) for i, e in zip(train, train_evidence, strict=True)]
    print(agreement(train, fitted).line("train (in-sample)"))
    oof = out_of_fold(scorer, specs, train, train_evidence)
    print(agreement(train, oof).line("train out-of-fold"))
    names = ["dev"] + (["test"] if test else [])
    unseen: list[Labelled] = []
    seconds, answers = 0.0, 0
    for name in names:
        chosen = [i for i in items if i.question in set(split[name])]  # type: ignore[call-overload]
        unseen += chosen
        started = time.perf_counter()
        evidence = compute_evidence(scorer, specs, chosen)
        seconds += time.perf_counter() - started
        answers += len(chosen)
        predicted = [predict(scorer, specs, i, e) for i, e in zip(chosen, evidence, strict=True)]
        print(agreement(chosen, predicted).line(name))
        if show:
            for item, p in zip(chosen, predicted, strict=True):
                print(
                    f"  {item.kind:>13} human {item.score:>4.0f} machine {p:>4.1f}  {item.question}"
                )
    # The same answers against the English rubric of the same question.
    mapping = {k: v for k, v in dict(split["english_rubric"]).items() if v}  # type: ignore[call-overload]
    english = english_specs(language)
    crossed_specs = {ru: english[en] for ru, en in mapping.items()}
    crossed = [i for i in unseen if i.question in crossed_specs]
    evidence = compute_evidence(scorer, crossed_specs, crossed)
    predicted = [
        predict(scorer, crossed_specs, i, e) for i, e in zip(crossed, evidence, strict=True)
    ]
    print(
        agreement(crossed, predicted).line(
            f"{'+'.join(names)}, English rubric ({len({i.question for i in crossed})} questions)"
        )
    )
    print(
        f"model load {loaded * 1000:.0f} ms; "
        f"{seconds / max(1, answers) * 1000:.0f} ms per answer on this machine"
    )
