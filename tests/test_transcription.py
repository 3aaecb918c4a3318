"""Speech to text: faster-whisper on real synthetic speech, the OpenAI API engine against a local
server that speaks the API, and the live segmenter cutting answers at question boundaries."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from media.pcm import PcmChunk
from tests.wer import wer
from transcription.engine import make_engine, pcm_to_wav, without_loops
from transcription.faster import FasterWhisperEngine
from transcription.live import AnswerSoFar, LiveTranscriber, quietest_cut

ANSWERS = [
    "A generator is a function that yields values lazily and keeps its state between calls.",
    "An index lets the database find rows without scanning the whole table.",
]


def speech_pcm(tmp_path: Path, text: str, voice: str = "slt") -> bytes:
    """16 kHz mono PCM of `text` spoken by flite."""
    raw = tmp_path / f"{abs(hash((text, voice)))}.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True)
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(raw), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
        capture_output=True,
        check=True,
    )
    return out.stdout


@pytest.fixture(scope="module")
def whisper() -> FasterWhisperEngine:
    return FasterWhisperEngine()


@pytest.mark.parametrize("voice", ["slt", "rms", "awb"])
def test_faster_whisper_transcribes_flite_voices(whisper, tmp_path: Path, voice: str) -> None:
    pcm = speech_pcm(tmp_path, ANSWERS[0], voice)
    text = whisper.transcribe(pcm)
    error = wer(ANSWERS[0], text)
    print(f"{voice}: WER {error:.2f}: {text}")
    assert error < 0.35


def test_silence_and_tiny_input_give_no_text(whisper) -> None:
    assert whisper.transcribe(b"") == ""
    assert whisper.transcribe(b"\x00\x00" * 800) == ""


async def test_openai_engine_talks_to_a_local_server_speaking_the_api(aiohttp_server) -> None:
    received: dict[str, object] = {}

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        received["model"] = form["model"]
        received["wav"] = upload.file.read()  # type: ignore[union-attr]
        received["auth"] = request.headers.get("Authorization")
        return web.json_response({"text": " an index avoids a full table scan "})

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    server = await aiohttp_server(app)
    engine = make_engine(
        "openai", model="whisper-large-v3", base_url=str(server.make_url("/v1")), api_key="k"
    )
    pcm = b"\x01\x00" * 16000
    text = await asyncio.to_thread(engine.transcribe, pcm)
    assert text == "an index avoids a full table scan"
    assert received["model"] == "whisper-large-v3" and received["auth"] == "Bearer k"
    wav = received["wav"]
    assert isinstance(wav, bytes) and wav[:4] == b"RIFF" and wav == pcm_to_wav(pcm)


async def test_live_transcriber_gives_partials_and_cuts_answers_at_boundaries(
    whisper, tmp_path: Path
) -> None:
    updates: list[tuple[int, str, bool]] = []
    finals: list[AnswerSoFar] = []

    async def on_update(position: int, text: str, final: bool) -> None:
        updates.append((position, text, final))

    async def on_final(answer: AnswerSoFar, at: float) -> None:
        # What the answer job does: the segments not transcribed yet (the tail cut at the
        # boundary) are transcribed from the audio handed on with them.
        for piece in answer.pieces:
            if piece.text is None:
                assert piece.pcm
                piece.text = await asyncio.to_thread(whisper.transcribe, piece.pcm)
        finals.append(answer)

    async def transcribe(pcm: bytes, partial: bool) -> str:
        return await asyncio.to_thread(whisper.transcribe, pcm, partial)

    live = LiveTranscriber(transcribe, on_update, on_final)
    live.start()
    start = 1_000_000.0
    live.boundary(start, 1)
    t = start
    silence = b"\x00\x00" * 320 * 50  # 1 s
    # Question 1's answer, a pause, then the recruiter moves on; question 2's answer.
    for position, text in enumerate(ANSWERS, start=1):
        audio = speech_pcm(tmp_path, text) + silence
        for offset in range(0, len(audio), 640):
            chunk = audio[offset : offset + 640]
            live.push(PcmChunk(1, "candidate", chunk, t))
            t += len(chunk) / 32000
            await asyncio.sleep(0.005)  # about 4x real time, so partial passes can run
        if position == 1:
            live.boundary(t, 2)
    live.boundary(t, None)
    live.push(PcmChunk(1, "candidate", silence, t))
    for _ in range(200):
        if len(finals) == 2:
            break
        await asyncio.sleep(0.05)
    await live.stop()
    assert [a.position for a in finals] == [1, 2]
    for answer, text in zip(finals, ANSWERS, strict=True):
        print(f"Q{answer.position}: WER {wer(text, answer.text):.2f}: {answer.text}")
        assert wer(text, answer.text) < 0.35
        assert all(start <= p.start < p.end <= t for p in answer.pieces)
    assert finals[0].pieces[-1].end <= finals[1].started_at  # nothing of answer 2 in answer 1
    assert any(not final for _, _, final in updates), "no partial text while speaking"


def test_a_phrase_looped_by_whisper_is_kept_once_and_real_repeats_stay() -> None:
    looped = "A generator e-mail u-mail u-mail u-mail u-mail u-mail u-mail u-mail."
    assert without_loops(looped) == "A generator e-mail u-mail"
    assert without_loops("one at a time " * 5 + "and so on.") == "one at a time and so on."
    # What people do say twice or three times is left alone.
    assert without_loops("No, no, no. It is O(n) per call, per call.") == (
        "No, no, no. It is O(n) per call, per call."
    )
    assert without_loops("") == ""


def test_a_segment_that_grew_too_long_is_cut_at_its_quietest_moment() -> None:
    rng = np.random.default_rng(3)
    speech = (rng.standard_normal(16000 * 12) * 3000).astype(np.int16)
    speech[16000 * 10 : 16000 * 10 + 1600] = 40  # a 0.1 s near-silence 2 s before the end
    cut = quietest_cut(speech.tobytes())
    assert cut % 2 == 0 and abs(cut / 32000 - 10.05) < 0.06
    # Quiet earlier than the last 3 s is not looked at; no quiet at all still gives a cut.
    speech[16000 * 10 : 16000 * 10 + 1600] = speech[:1600]
    speech[16000 * 2 : 16000 * 2 + 1600] = 0
    assert 9 * 32000 <= quietest_cut(speech.tobytes()) <= len(speech) * 2
    assert quietest_cut(b"\x01\x00" * 100) == 200


async def test_a_sender_that_goes_quiet_ends_its_segment_before_the_recruiter_moves_on(
    whisper, tmp_path: Path
) -> None:
    """No trailing silence arrives (the peer stopped sending): the segment is still committed
    and transcribed at once, so moving on later finds the text ready."""
    updates: list[tuple[int, str, bool]] = []
    finals: list[AnswerSoFar] = []

    async def transcribe(pcm: bytes, partial: bool) -> str:
        return await asyncio.to_thread(whisper.transcribe, pcm, partial)

    async def on_update(position: int, text: str, final: bool) -> None:
        updates.append((position, text, final))

    async def on_final(answer: AnswerSoFar, at: float) -> None:
        finals.append(answer)

    live = LiveTranscriber(transcribe, on_update, on_final)
    live.start()
    start = time.time() - 30
    live.boundary(start, 1)
    feed(live, speech_pcm(tmp_path, ANSWERS[1]), start)
    for _ in range(300):  # generous: a loaded 2-core machine
        if any(final for _, _, final in updates):
            break
        await asyncio.sleep(0.05)
    live.boundary(time.time(), None)
    for _ in range(300):
        if finals:
            break
        await asyncio.sleep(0.05)
    await live.stop()
    assert finals and all(p.text is not None for p in finals[0].pieces)
    assert wer(ANSWERS[1], finals[0].text) < 0.35


async def test_shutting_down_hands_on_the_answer_with_the_audio_not_yet_transcribed(
    tmp_path: Path,
) -> None:
    """A server stopping mid-answer: the answer goes on at once, its segments that are still
    being transcribed travelling as audio, instead of being lost."""
    started = asyncio.Event()
    finals: list[AnswerSoFar] = []

    async def slow(pcm: bytes, partial: bool) -> str:
        if not partial:
            started.set()
        await asyncio.sleep(60)  # a busy worker
        return "never"

    async def on_update(position: int, text: str, final: bool) -> None:
        return None

    async def on_final(answer: AnswerSoFar, at: float) -> None:
        finals.append(answer)

    live = LiveTranscriber(slow, on_update, on_final)
    live.start()
    start = time.time() - 20
    live.boundary(start, 1)
    audio = speech_pcm(tmp_path, ANSWERS[0]) + b"\x00\x00" * 16000
    feed(live, audio, start)
    await asyncio.wait_for(started.wait(), 10)  # a segment committed, being transcribed
    live.boundary(time.time(), None)
    live.hurry()
    for _ in range(40):
        if finals:
            break
        await asyncio.sleep(0.05)
    await live.stop()
    assert finals, "the answer was not handed on within 2 s"
    pieces = finals[0].pieces
    assert pieces and all(p.text is None and p.pcm for p in pieces)
    assert sum(len(p.pcm) for p in pieces) > len(audio) // 2


def feed(live: LiveTranscriber, audio: bytes, start: float) -> float:
    """Queue `audio` as the 20 ms chunks the recorder hands on, stamped from `start`; the
    time after its end."""
    for offset in range(0, len(audio), 640):
        live.push(PcmChunk(1, "candidate", audio[offset : offset + 640], start))
        start += 0.02
    return start
