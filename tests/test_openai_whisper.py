"""The openai-whisper engine's plumbing, on a small randomly initialised Whisper built here (no
checkpoint can be downloaded): it loads a checkpoint file named by a setting, decodes with the
options we chose, refuses to download, and runs inside the live transcriber."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

from media.pcm import PcmChunk
from pipeline.factories import make_speech_engine
from service.settings import Settings
from tests.test_transcription import ANSWERS, speech_pcm
from transcription.engine import make_engine
from transcription.live import AnswerSoFar, LiveTranscriber
from transcription.openai_whisper import OpenAIWhisperEngine, checkpoint_for

DIMS = ModelDimensions(
    n_mels=80,
    n_audio_ctx=1500,
    n_audio_state=64,
    n_audio_head=2,
    n_audio_layer=1,
    n_vocab=51864,  # the English-only vocabulary, as tiny.en
    n_text_ctx=448,
    n_text_state=64,
    n_text_head=2,
    n_text_layer=1,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(7)
    model = Whisper(DIMS)
    path = tmp_path_factory.mktemp("whisper") / "random-tiny.pt"
    torch.save({"dims": asdict(DIMS), "model_state_dict": model.state_dict()}, path)
    return path


def test_a_checkpoint_file_named_by_the_setting_is_loaded(checkpoint: Path) -> None:
    settings = replace(
        Settings.from_env({"TRANSCRIPTION_ENGINE": "openai-whisper"}), whisper_model=str(checkpoint)
    )
    engine = make_speech_engine(settings)
    assert isinstance(engine, OpenAIWhisperEngine) and engine.name == "openai-whisper"
    model = engine._model
    assert model.dims == DIMS and not model.is_multilingual
    saved = torch.load(checkpoint)["model_state_dict"]
    assert torch.equal(
        model.decoder.token_embedding.weight, saved["decoder.token_embedding.weight"]
    )


def test_decoding_is_deterministic_and_uses_beam_search_for_final_passes(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine("openai-whisper", model=str(checkpoint))
    pcm = speech_pcm(tmp_path, ANSWERS[0])
    seen: list[whisper.DecodingOptions] = []
    decode = Whisper.decode

    def spy(model, mel, options, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(options)
        return decode(model, mel, options, **kwargs)

    monkeypatch.setattr(Whisper, "decode", spy)
    first = engine.transcribe(pcm)
    finals = list(seen)
    again = engine.transcribe(pcm)
    seen.clear()
    partial = engine.transcribe(pcm, partial=True)
    partials = list(seen)
    print(f"random weights say: {first[:80]!r}")
    assert isinstance(first, str) and first == again
    assert isinstance(partial, str)
    assert finals and partials, "the model's decode was not called"
    assert all(o.beam_size == 5 and o.temperature == 0.0 and o.language == "en" for o in finals)
    assert all(o.beam_size is None and not o.fp16 for o in partials)
    assert engine.transcribe(b"") == "" and engine.transcribe(b"\x00\x00" * 800) == ""


def test_nothing_is_downloaded_for_a_missing_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHISPER_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        checkpoint_for("tiny.en")
    with pytest.raises(FileNotFoundError, match="neither a checkpoint file"):
        checkpoint_for("no-such-model")
    assert list(tmp_path.iterdir()) == []


async def test_the_engine_serves_the_live_transcriber(checkpoint: Path, tmp_path: Path) -> None:
    engine = OpenAIWhisperEngine(str(checkpoint))
    finals: list[AnswerSoFar] = []

    async def transcribe(pcm: bytes, partial: bool) -> str:
        return await asyncio.to_thread(engine.transcribe, pcm, partial)

    async def on_update(position: int, text: str, final: bool) -> None:
        return None

    async def on_final(answer: AnswerSoFar, at: float) -> None:
        for piece in answer.pieces:
            if piece.text is None:
                piece.text = await transcribe(piece.pcm, False)
        finals.append(answer)

    live = LiveTranscriber(transcribe, on_update, on_final)
    live.start()
    t = 1_000.0
    live.boundary(t, 1)
    audio = speech_pcm(tmp_path, ANSWERS[1]) + b"\x00\x00" * 16000
    for offset in range(0, len(audio), 640):
        live.push(PcmChunk(1, "candidate", audio[offset : offset + 640], t))
        t += 0.02
    live.boundary(t, None)
    live.push(PcmChunk(1, "candidate", b"\x00\x00" * 320, t))
    for _ in range(600):
        if finals:
            break
        await asyncio.sleep(0.05)
    await live.stop()
    assert [a.position for a in finals] == [1]
    assert finals[0].pieces and all(isinstance(p.text, str) for p in finals[0].pieces)
