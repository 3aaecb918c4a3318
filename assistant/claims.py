"""The claim checker: does a sentence of the answer support a key point, contradict it, or do
neither? A MiniLM cross-encoder trained here (training/train_claims.py), shipped as
int8 ONNX in assistant/models/ and run with onnxruntime: no network, no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.embeddings import bundled_tokenizer
from assistant.onnx import OnnxMiniLM, softmax

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
        self.model = OnnxMiniLM(model, bundled_tokenizer(), MAX_TOKENS, threads)
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
        logits, _ = self.model.run(self.model.tokenizer.encode_batch(pairs))
        return softmax(logits)
