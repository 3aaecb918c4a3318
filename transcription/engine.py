"""The engine interface: 16 kHz mono PCM in, text out. Engines are synchronous and CPU-heavy:
callers run them in a worker thread or process, never on the event loop."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Protocol

PCM_RATE = 16_000


class Engine(Protocol):
    name: str

    def transcribe(self, pcm: bytes, partial: bool = False) -> str:
        """Text of `pcm` (s16le mono 16 kHz). `partial`: a quick pass while the person speaks."""
        ...


def without_loops(text: str, longest: int = 6, most: int = 3) -> str:
    """`text` with runs of one phrase (up to `longest` words) said more than `most` times in a
    row cut to one: Whisper's known failure mode ("u-mail u-mail u-mail ..." for a whole
    segment), which a person hardly ever says."""
    words = text.split()
    key = [w.strip(".,!?;:\"'").lower() for w in words]
    out: list[int] = []  # indexes of the words kept
    i = 0
    while i < len(words):
        for n in range(1, longest + 1):
            repeats = 1
            while key[i + repeats * n : i + (repeats + 1) * n] == key[i : i + n] and (
                i + (repeats + 1) * n <= len(words)
            ):
                repeats += 1
            if repeats > most:
                out.extend(range(i, i + n))
                i += repeats * n
                break
        else:
            out.append(i)
            i += 1
    return " ".join(words[j] for j in out)


def pcm_to_wav(pcm: bytes, rate: int = PCM_RATE) -> bytes:
    """A WAV file around raw PCM, for engines that take files."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def make_engine(
    name: str,
    model: str = "",
    base_url: str = "",
    api_key: str = "",
    language: str = "en",
    cache: Path | None = None,
    beam_size: int | None = None,
) -> Engine:
    """The engine a setting names, for speech in `language` (given to Whisper, not detected).
    No model named: tiny.en for English, Whisper base (multilingual) for other languages.
    `beam_size`: faster-whisper's final passes (None: its default for the language)."""
    if name == "faster-whisper":
        from transcription.faster import FasterWhisperEngine

        return FasterWhisperEngine(
            model or None, language=language, cache=cache, beam_size=beam_size
        )
    if name == "openai-whisper":
        from transcription.openai_whisper import OpenAIWhisperEngine

        default = "tiny.en" if language == "en" else "base"
        return OpenAIWhisperEngine(model or default, language=language)
    if name == "openai":
        from transcription.openai_api import OpenAIEngine

        return OpenAIEngine(base_url or None, api_key, model or "whisper-1", language=language)
    raise ValueError(f"unknown transcription engine {name!r}")
