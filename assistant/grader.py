"""The grader: a MiniLM cross-encoder that reads a question's rubric (question, key points,
common misconceptions) beside a whole answer and estimates the score a senior interviewer would
give, 0-10. Trained here (training/train_grader.py) on labelled answers to bank questions that
the evaluation set does not use; shipped as int8 ONNX, run with onnxruntime alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.embeddings import bundled_tokenizer
from assistant.onnx import OnnxMiniLM
from assistant.scorer import QuestionSpec

MAX_TOKENS = 320
MODEL = Path(__file__).parent / "models" / "grader-int8.onnx"


def rubric_text(question: QuestionSpec) -> str:
    """What the grader reads of the question: the same text at training and at run time."""
    text = f"{question.text} Key points: {'; '.join(question.key_points)}."
    if question.misconceptions:
        text += f" Common mistakes: {'; '.join(question.misconceptions)}."
    return text


class Grader:
    """A whole-answer score estimate; one pass of the model per answer."""

    def __init__(self, model: Path = MODEL, threads: int = 2) -> None:
        if not model.exists():
            raise RuntimeError(
                f"the grader model is missing ({model}); train it with training/train_grader.py"
            )
        self.model = OnnxMiniLM(model, bundled_tokenizer(), MAX_TOKENS, threads)

    def grade(self, question: QuestionSpec, answer: str) -> float:
        """0-10."""
        logits, _ = self.model.run([self.model.tokenizer.encode(rubric_text(question), answer)])
        return float(10.0 / (1.0 + np.exp(-float(logits[0][0]))))
