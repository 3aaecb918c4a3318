"""One MiniLM model run with onnxruntime: its WordPiece tokenizer (padded to the longest of a
batch) and an inference session shared by threads. The embedder, the claim checker and the
grader are each one of these with their own head."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer


class OnnxMiniLM:
    """Encode texts (or text pairs) and run the model on them."""

    def __init__(self, model: Path, tokenizer: Path, max_tokens: int, threads: int = 2) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        # The shipped tokenizer pads everything to 128: pad to the longest in the batch instead.
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def run(self, encoded: list[Encoding]) -> tuple[np.ndarray, np.ndarray]:
        """The model's first output for these encodings, and their attention mask."""
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        with self._lock:
            (output,) = self.session.run(None, feed)
        return output, mask


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
