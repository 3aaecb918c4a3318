"""The claim checker: does a sentence of the answer support a key point, contradict it, or do
neither? A MiniLM cross-encoder trained here (training/train_claims.py), shipped as
int8 ONNX in assistant/models/ and run with onnxruntime: no network, no torch."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from assistant.embeddings import bundled_tokenizer

LABELS = ("supports", "contradicts", "neutral")
MAX_TOKENS = 128
MODEL = Path(__file__).parent / "models" / "claims-int8.onnx"


class ClaimChecker:
    """Probabilities (supports, contradicts, neutral) for (claim, sentence) pairs."""

    def __init__(self, model: Path = MODEL, threads: int = 2) -> None:
        if not model.exists():
            raise RuntimeError(
                f"the claim checker model is missing ({model}); "
                "train it with training/train_claims.py"
            )
        self.tokenizer = Tokenizer.from_file(str(bundled_tokenizer()))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def check(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """An (n, 3) array of probabilities, rows in the order of `pairs`."""
        if not pairs:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        missing = sorted({p for p in pairs if p not in self._cache}, key=lambda p: len(p[1]))
        for start in range(0, len(missing), 32):
            batch = missing[start : start + 32]
            for pair, row in zip(batch, self._run(batch), strict=True):
                if len(self._cache) >= 8192:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[pair] = row
        return np.stack([self._cache[p] for p in pairs])

    def _run(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(pairs)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        with self._lock:
            (logits,) = self.session.run(None, feed)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
