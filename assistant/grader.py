"""The grader: a MiniLM cross-encoder that reads a question's rubric (question, key points,
common misconceptions) beside a whole answer and estimates the score a senior interviewer would
give, 0-10. Trained here (training/train_grader.py) on labelled answers to bank questions that
the evaluation set does not use; shipped as int8 ONNX, run with onnxruntime alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from assistant.embeddings import bundled_tokenizer
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
        self.tokenizer = Tokenizer.from_file(str(bundled_tokenizer()))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def grade(self, question: QuestionSpec, answer: str) -> float:
        """0-10."""
        encoded = self.tokenizer.encode(rubric_text(question), answer)
        feed = {
            "input_ids": np.array([encoded.ids], dtype=np.int64),
            "attention_mask": np.array([encoded.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([encoded.type_ids], dtype=np.int64),
        }
        with self._lock:
            (logits,) = self.session.run(None, feed)
        return float(10.0 / (1.0 + np.exp(-float(logits[0][0]))))
