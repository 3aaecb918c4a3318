"""Train the grader: a cross-encoder that reads (rubric, whole answer) and estimates the human
score. Exported to int8 ONNX as assistant/models/grader-int8.onnx (assistant/grader.py).

Not part of CI. Reproducible (seeded); about 25 minutes on 2 CPU cores. Needs the `train` extra:
    .venv/bin/python training/train_grader.py [--epochs 4] [--composed 10]

Training data: training/answers-*.yaml, labelled answers (every kind: strong, partial,
confidently wrong, vague, off-topic, short, unusual wording, half wrong, a misconception,
garbled by speech recognition) to bank questions that the labelled evaluation set
(tests/data/scoring/) does not use at all, and the first labelled set's answers to such
questions; answers composed from the handwritten claim pairs (training/pairs-*.yaml) of the
same questions (see `composed`); a third of them again as speech recognition writes them. The
evaluation set's questions are never seen, so its train split can fit how the grader is
weighted and its dev and test splits measure it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from crossencoder import CrossEncoder, base_model, encode, export, fit, tokenizer_for  # noqa: E402
from rules import spoken  # noqa: E402
from scoring_data import FIRST_SET, load  # noqa: E402
from train_claims import load_pairs  # noqa: E402

from assistant.grader import MAX_TOKENS, rubric_text  # noqa: E402
from assistant.scorer import QuestionSpec  # noqa: E402

SEED = 20261202


def composed(
    specs: dict[str, QuestionSpec], questions: set[str], per_question: int, rng: random.Random
) -> list[tuple[str, str, float, str]]:
    """Answers put together from the claim checker's handwritten sentences of these questions,
    scored by what they state: each key point supported is worth 9.5 / n, each one contradicted
    costs 3 / n, each misconception asserted 1.5; only neutral sentences (on topic, saying
    nothing) 1.5; another question's sentences 0. They teach the grader, at the scale of a
    whole answer, what the claim checker learns per sentence: a confident wrong answer sounds
    as fluent and topical as a right one (real answers alone left wrong, partial and off-topic
    answers all near 3.6 of 10 on unseen questions)."""
    by: dict[tuple[str, str, str], list[str]] = {}
    for question, claim, sentence, label in load_pairs(held_out=set()):
        if question in questions:
            by.setdefault((question, claim, label), []).append(sentence)
    rows: list[tuple[str, str, float, str]] = []
    ordered = sorted(questions)
    mixes = ("strong", "partial", "wrong", "mixed", "misconception", "vague", "off-topic")
    for question in ordered:
        spec = specs[question]
        points = [p for p in spec.key_points if (question, p, "supports") in by]
        if len(points) < 2:
            continue
        n = len(points)
        neutral = [s for p in points for s in by.get((question, p, "neutral"), [])]
        for m in range(per_question):
            mix = mixes[m % len(mixes)]
            order = rng.sample(points, n)
            if mix == "strong":
                right, wrong = order, []
            elif mix == "partial":
                right, wrong = order[: max(1, round(n * rng.uniform(0.3, 0.6)))], []
            elif mix == "wrong":
                right, wrong = [], order[: max(1, round(n * rng.uniform(0.5, 1.0)))]
            elif mix == "mixed":
                half = max(1, n // 2)
                right, wrong = order[:half], order[half : half + max(1, half - 1)]
            elif mix == "misconception":
                right, wrong = order[: max(1, round(n * rng.uniform(0.5, 0.9)))], []
            else:
                right, wrong = [], []
            sentences = [rng.choice(by[(question, p, "supports")]) for p in right]
            sentences += [
                rng.choice(by[(question, p, "contradicts")])
                for p in wrong
                if (question, p, "contradicts") in by
            ]
            asserted = 0
            if mix in ("misconception", "wrong"):
                options = [c for c in spec.misconceptions if (question, c, "supports") in by]
                if options:
                    sentences.append(rng.choice(by[(question, rng.choice(options), "supports")]))
                    asserted = 1
            if mix == "vague" or (neutral and rng.random() < 0.5):
                sentences += rng.sample(neutral, min(len(neutral), rng.randint(1, 3)))
            if mix == "off-topic":
                other = rng.choice([q for q in ordered if q != question])
                sentences = [
                    s
                    for (q, _, kind), ss in by.items()
                    if q == other and kind == "supports"
                    for s in ss
                ]
                sentences = rng.sample(sentences, min(len(sentences), rng.randint(2, 5)))
                score = 0.0
            elif not right and not wrong and not asserted:
                score = 1.5
            else:
                score = 9.5 * len(right) / n - 3 * len(wrong) / n - 1.5 * asserted
            if not sentences:
                continue
            rng.shuffle(sentences)
            rows.append((question, " ".join(sentences), float(min(9.5, max(0.0, score))), mix))
    return rows


def examples() -> list[tuple[str, str, float, str]]:
    """(question, answer, score, kind) of every training answer to a question the evaluation
    set does not use."""
    specs, evaluation = load()
    unused = {q for q in specs if not q.startswith("ext-")} - {i.question for i in evaluation}
    _, training = load(ROOT / "training", "answers-*.yaml")
    rows = [(i.question, i.answer, i.score, i.kind) for i in training if i.question in unused]
    for item in yaml.safe_load(FIRST_SET.read_text(encoding="utf-8")):
        if item["question"] in unused:
            rows.append(
                (item["question"], item.get("answer") or "", float(item["score"]), item["kind"])
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--out", type=Path, default=ROOT / "assistant" / "models")
    parser.add_argument(
        "--composed", type=int, default=10, help="answers composed per question from the pairs"
    )
    parser.add_argument("--keep-full", action="store_true", help="also write the float model")
    args = parser.parse_args()
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(os.cpu_count() or 2)
    rng = random.Random(SEED)
    specs, _ = load()
    rows = examples()
    questions = sorted({r[0] for r in rows})
    aside = set(rng.sample(questions, max(1, len(questions) // 10)))
    train = [r for r in rows if r[0] not in aside]
    train += composed(specs, set(questions) - aside, args.composed, rng)
    train += [(q, spoken(a), s, k) for q, a, s, k in train if rng.random() < 0.33]
    check = [r for r in rows if r[0] in aside]
    print(
        f"{len(rows)} answers to {len(questions)} questions; training on {len(train)}, checking on {len(check)}"
    )
    tokenizer = tokenizer_for(MAX_TOKENS)
    model = CrossEncoder(base_model(), 1)

    def loss_of(batch: Sequence[tuple[str, str, float, str]]) -> torch.Tensor:
        inputs = encode(tokenizer, [(rubric_text(specs[q]), a) for q, a, _, _ in batch])
        target = torch.tensor([s / 10 for _, _, s, _ in batch])
        predicted = torch.sigmoid(model(**inputs)[:, 0])
        return torch.nn.functional.mse_loss(predicted, target)

    def report(epoch: int, loss: float, seconds: float) -> None:
        print(
            f"epoch {epoch}: loss {loss:.4f}, mean absolute error on unseen "
            f"questions {evaluate(model, tokenizer, specs, check):.2f} ({seconds:.0f} s)"
        )

    fit(model, train, loss_of, report, lr=args.lr, epochs=args.epochs, batch=args.batch, rng=rng)
    export(model, tokenizer, args.out / "grader-int8.onnx", keep_full=args.keep_full)


@torch.no_grad()
def evaluate(model: CrossEncoder, tokenizer: Tokenizer, specs, rows) -> float:  # type: ignore[no-untyped-def]
    model.eval()
    errors = []
    for start in range(0, len(rows), 32):
        batch = rows[start : start + 32]
        inputs = encode(tokenizer, [(rubric_text(specs[q]), a) for q, a, _, _ in batch])
        predicted = 10 * torch.sigmoid(model(**inputs)[:, 0])
        errors += [abs(float(p) - s) for p, (_, _, s, _) in zip(predicted, batch, strict=True)]
    return sum(errors) / max(1, len(errors))


if __name__ == "__main__":
    main()
