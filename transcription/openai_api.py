"""The OpenAI audio transcription API (or any server that speaks it), through `openai`."""

from __future__ import annotations

from openai import OpenAI

from transcription.engine import pcm_to_wav


class OpenAIEngine:
    name = "openai"

    def __init__(
        self, base_url: str | None, api_key: str, model: str = "whisper-1", language: str = "en"
    ) -> None:
        self.model = model
        self.language = language
        self._client = OpenAI(
            base_url=base_url, api_key=api_key or "unset", timeout=30, max_retries=1
        )

    def transcribe(self, pcm: bytes, partial: bool = False) -> str:
        if len(pcm) < 3200:
            return ""
        result = self._client.audio.transcriptions.create(
            model=self.model,
            file=("answer.wav", pcm_to_wav(pcm), "audio/wav"),
            language=self.language,
            response_format="json",
        )
        return str(result.text).strip()
