"""openai-whisper (PyTorch) on the CPU: the optional `whisper` extra.

A model is a checkpoint file, or a name whose checkpoint already lies in the download folder
(`~/.cache/whisper`, or WHISPER_CACHE). Nothing is downloaded at run time: a missing checkpoint
is an error that says where to put it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np


def _folder() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    return Path(os.environ.get("WHISPER_CACHE", default))


def checkpoint_for(model: str) -> Path:
    """The checkpoint file for a path or a model name, without downloading anything."""
    import whisper

    path = Path(model).expanduser()
    if path.is_file():
        return path
    if model in whisper._MODELS:
        cached = _folder() / Path(whisper._MODELS[model]).name
        if cached.is_file():
            return cached
        raise FileNotFoundError(
            f"openai-whisper model {model!r} is not in {_folder()}; nothing is downloaded at "
            f"run time: copy {Path(whisper._MODELS[model]).name} there, or set WHISPER_MODEL "
            "to a checkpoint file"
        )
    raise FileNotFoundError(
        f"WHISPER_MODEL={model!r} is neither a checkpoint file nor one of "
        f"{', '.join(whisper.available_models())}"
    )


class OpenAIWhisperEngine:
    """Final passes use beam search 5, partials greedy decoding; temperature 0 for both (the
    fallback to sampling causes latency spikes); fp32, since the CPU has no fp16."""

    name = "openai-whisper"

    def __init__(
        self,
        model: str | Any = None,
        threads: int = 2,
        beam_size: int = 5,
        language: str = "en",
    ) -> None:
        import torch
        import whisper

        torch.set_num_threads(threads)
        if isinstance(model, whisper.model.Whisper):
            self._model = model
        else:
            self._model = whisper.load_model(str(checkpoint_for(model or "tiny.en")), device="cpu")
        self.beam_size = beam_size
        if language != "en" and not self._model.is_multilingual:
            raise ValueError(
                f"this Whisper model is English-only: it cannot transcribe {language!r}; use a "
                "multilingual one (WHISPER_MODEL_MULTILINGUAL)"
            )
        self.language = language if self._model.is_multilingual else "en"
        self._lock = threading.Lock()

    def transcribe(self, pcm: bytes, partial: bool = False) -> str:
        if len(pcm) < 3200:  # under 0.1 s
            return ""
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        with self._lock:
            result = self._model.transcribe(
                audio,
                language=self.language,
                temperature=0.0,
                beam_size=None if partial else self.beam_size,
                condition_on_previous_text=False,
                fp16=False,
                verbose=None,
            )
        return str(result["text"]).strip()
