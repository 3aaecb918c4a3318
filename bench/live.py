"""The live pipeline's numbers: Whisper's real-time factor, the delay from the recruiter moving
on to the final transcript and to the score, and word error rate through WebRTC vs the clean WAV.

Run: .venv/bin/python bench/live.py [--answers 20] [--speed 4] [--webrtc 3] [--language ru]

Answers are the bank's expected answers (one or two joined: 10-60 s) spoken by flite voices and
espeak-ng (with --language ru: the Russian banks' answers, spoken by festival's festvox-ru
voice and espeak-ng's ru, the hard case; Whisper base, told the language). For the delays, each answer's 16 kHz PCM is fed to the live transcriber in 20 ms
chunks at `--speed` times real time (the engine sees the same segments as in a call), the
recruiter "moves on" `--gap` seconds after the answer ends, and the local scorer scores it. For WER
through WebRTC, `--webrtc` answers are sent by a real aiortc peer to the server's media peer.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.by_language import ScorerByLanguage  # noqa: E402
from assistant.local import LocalScorer  # noqa: E402
from assistant.multilingual import MultilingualScorer  # noqa: E402
from assistant.scorer import QuestionSpec  # noqa: E402
from jobs.queue import LocalJobs  # noqa: E402
from media.pcm import PcmChunk, PcmQueues  # noqa: E402
from pipeline.answers import PARTIAL_REPLY_S, SEGMENT_REPLY_S  # noqa: E402
from pipeline.work import Work, answer_body  # noqa: E402
from rooms.bank import bundled_banks, bundled_banks_in  # noqa: E402
from tests.rtc import festival_ru  # noqa: E402
from tests.wer import wer  # noqa: E402
from transcription.faster import FasterWhisperEngine  # noqa: E402
from transcription.live import AnswerSoFar, LiveTranscriber  # noqa: E402

VOICES = [
    ("flite", "slt"),
    ("flite", "rms"),
    ("flite", "awb"),
    ("flite", "kal"),
    ("espeak-ng", "en-us"),
]
VOICES_RU = [
    ("festival", "msu_ru_nsh_clunits"),
    ("festival", "msu_ru_nsh_clunits"),
    ("festival", "msu_ru_nsh_clunits"),
    ("espeak-ng", "ru"),
]


def speak(text: str, tool: str, voice: str, folder: Path, name: str) -> Path:
    raw = folder / f"{name}.raw.wav"
    if tool == "flite":
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True)
    elif tool == "festival":
        festival_ru(raw, text)
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    return raw


def pcm16k(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
        capture_output=True,
        check=True,
    ).stdout


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def make_answers(
    count: int, folder: Path, language: str = "en"
) -> list[tuple[str, QuestionSpec, Path, str]]:
    """(text, question, wav, voice) for `count` answers of 10-60 s."""
    banks = bundled_banks() if language == "en" else bundled_banks_in(language)
    questions = [q for bank in banks for q in bank.questions if q.key_points]
    voices = VOICES if language == "en" else VOICES_RU
    rng = random.Random(7)
    rng.shuffle(questions)
    answers = []
    for i in range(count):
        q = questions[i]
        text = q.expected_answer
        if i % 4 == 3:  # some long answers: more sentences of a second expected answer
            text = f"{text} {questions[i + count].expected_answer}"
        elif i % 4 == 1:  # some short ones: the first two sentences
            text = " ".join(text.split(". ")[:2])
        if language != "en":
            # festvox-ru reads no Latin letters (it skips "NumPy") and Whisper writes numbers
            # as digits: such words are left out of what is spoken and of the reference.
            text = " ".join(re.sub(r"\S*[A-Za-z0-9]\S*", " ", text).split())

        tool, voice = voices[i % len(voices)]
        wav = speak(text, tool, voice, folder, f"a{i}")
        while len(pcm16k(wav)) > 60 * 32000 and ". " in text:  # too long: drop a sentence
            text = text.rsplit(". ", 1)[0] + "."
            wav = speak(text, tool, voice, folder, f"a{i}")
        answers.append(
            (
                text,
                QuestionSpec(q.text, q.expected_answer, q.key_points, q.misconceptions, language),
                wav,
                f"{tool}:{voice}",
            )
        )
    return answers


def real_time_factor(engine: FasterWhisperEngine, samples: list[bytes]) -> float:
    audio = sum(len(s) for s in samples) / 32000
    started = time.perf_counter()
    for pcm in samples:
        engine.transcribe(pcm)
    return (time.perf_counter() - started) / audio


def pipeline(engine: FasterWhisperEngine, scorer: ScorerByLanguage, language: str = "en"):  # type: ignore[no-untyped-def]
    """The service's own job path (pipeline.work.Work behind LocalJobs, with the deadlines of
    pipeline.answers), without the database writes."""
    work = Work(None, None, lambda language: engine, scorer)  # type: ignore[arg-type]
    jobs = LocalJobs(work)

    async def transcribe(pcm: bytes, partial: bool) -> str | None:
        wait = PARTIAL_REPLY_S if partial else SEGMENT_REPLY_S
        body = {"partial": partial, "deadline": time.time() + wait, "language": language}
        reply = await jobs.submit("transcribe", body, pcm, reply_within=wait)
        return None if reply is None else reply["text"]

    return work, transcribe


async def finish(
    work: Work,
    interview: int,
    answer: AnswerSoFar,
    at: float,
    spec: QuestionSpec | None = None,
    language: str = "en",
) -> str:
    """What an answer job does, without the database: the final text (and, given the
    question, the score)."""
    body, pcm = answer_body(interview, answer, at, language)

    text, _ = await work.answer_text(body, pcm)
    if spec is not None:
        await work.score(spec, text)
    return text


async def concurrent(  # type: ignore[no-untyped-def]
    engine: FasterWhisperEngine, scorer: ScorerByLanguage, answers, gap: float, language: str
):
    """len(answers) candidates answering at the same time, in real time, on one process;
    (score delays after moving on, partial updates per candidate per minute of speech)."""
    work, transcribe = pipeline(engine, scorer, language)
    to_score: list[float] = []
    partials = 0

    async def one(index: int, spec: QuestionSpec, wav: Path) -> None:
        nonlocal partials
        done = asyncio.Event()
        moved = 0.0

        async def on_update(position: int, text: str, final: bool) -> None:
            nonlocal partials
            if final:
                work.prepare(text, language)
            else:
                partials += 1

        async def on_final(answer: AnswerSoFar, at: float) -> None:
            await finish(work, index, answer, at, spec, language)
            to_score.append(time.perf_counter() - moved)
            done.set()

        live = LiveTranscriber(transcribe, on_update, on_final)
        live.start()
        clock = time.time()
        live.boundary(clock, 1)
        work.prepare_question(spec)
        audio = pcm16k(wav) + b"\x00\x00" * int(16000 * gap)
        started = time.perf_counter()
        for offset in range(0, len(audio), 640):
            chunk = audio[offset : offset + 640]
            live.push(PcmChunk(index, "candidate", chunk, clock))
            clock += len(chunk) / 32000
            # Real time, without drift: sleep until this chunk's due time.
            await asyncio.sleep(max(0.0, (offset + 640) / 32000 - (time.perf_counter() - started)))
        moved = time.perf_counter()
        live.boundary(clock, None)
        live.push(PcmChunk(index, "candidate", b"\x00\x00" * 320, clock))
        await asyncio.wait_for(done.wait(), 120)
        await live.stop()

    await asyncio.gather(*(one(i, a[1], a[2]) for i, a in enumerate(answers, start=1)))
    work.close()
    minutes = sum(len(pcm16k(a[2])) for a in answers) / 32000 / 60
    return to_score, partials / minutes


async def delays(  # type: ignore[no-untyped-def]
    engine: FasterWhisperEngine,
    scorer: ScorerByLanguage,
    answers,
    speed: float,
    gap: float,
    language: str = "en",
):
    """Feed each answer through a live transcriber; time transcript and score after moving on
    (and count the partial texts shown while each answer is spoken)."""
    to_transcript: list[float] = []
    to_score: list[float] = []
    texts: list[str] = []
    partials: list[int] = [0]
    done = asyncio.Event()
    moved: dict[int, float] = {}

    work, transcribe = pipeline(engine, scorer, language)

    async def on_update(position: int, text: str, final: bool) -> None:
        if final:
            work.prepare(text, language)  # as pipeline.answers does
        else:
            partials[0] += 1

    async def on_final(answer: AnswerSoFar, at: float) -> None:
        text = await finish(work, 1, answer, at, language=language)
        to_transcript.append(time.perf_counter() - moved[answer.position])
        await work.score(answers[answer.position - 1][1], text)
        to_score.append(time.perf_counter() - moved[answer.position])
        texts.append(text)
        done.set()

    live = LiveTranscriber(transcribe, on_update, on_final)
    live.start()
    clock = time.time()
    for position, (_, spec, wav, _) in enumerate(answers, start=1):
        live.boundary(clock, position)
        work.prepare_question(spec)  # as pipeline.answers does when the question appears
        audio = pcm16k(wav) + b"\x00\x00" * int(16000 * gap)  # the recruiter moves on `gap` s later
        for offset in range(0, len(audio), 640):
            chunk = audio[offset : offset + 640]
            live.push(PcmChunk(1, "candidate", chunk, clock))
            clock += len(chunk) / 32000
            await asyncio.sleep(len(chunk) / 32000 / speed)
        done.clear()
        moved[position] = time.perf_counter()
        live.boundary(clock, None)
        live.push(PcmChunk(1, "candidate", b"\x00\x00" * 320, clock))
        await asyncio.wait_for(done.wait(), 60)
    await live.stop()
    work.close()
    return to_transcript, to_score, texts, partials[0]


async def through_webrtc(answers, folder: Path) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Each WAV sent by an aiortc peer to the server's media peer; the candidate PCM it produced."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    from media.peer import MediaServer
    from media.storage import LocalStorage

    pcm = PcmQueues(max_chunks=100_000)
    server = MediaServer(LocalStorage(folder / "rec"), [], on_segment=lambda s: None, pcm_sink=pcm)
    results = []
    for i, (_, _, wav, _) in enumerate(answers, start=1):
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        player = MediaPlayer(str(wav))
        ended = asyncio.Event()
        player.audio.on("ended", ended.set)
        client.addTrack(player.audio)
        await client.setLocalDescription(await client.createOffer())
        answer = await server.accept(f"k{i}", i, "candidate", client.localDescription.sdp)
        await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.wait_for(ended.wait(), 120)
        await asyncio.sleep(0.5)
        await client.close()
        await server.close(f"k{i}")
        queue = pcm.queue(i)
        chunks = []
        while not queue.empty():
            chunks.append(queue.get_nowait().samples)
        results.append(b"".join(chunks))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument(
        "--speed", type=float, default=4.0, help="feed audio this many times real time"
    )
    parser.add_argument("--webrtc", type=int, default=3, help="answers also sent through WebRTC")
    parser.add_argument(
        "--gap", type=float, default=1.0, help="seconds from an answer's end to moving on"
    )
    parser.add_argument(
        "--concurrent",
        default="",
        help="comma-separated numbers of candidates answering at once, in real time (e.g. 1,2,4)",
    )
    parser.add_argument(
        "--language",
        default="en",
        help="ru: Russian answers (festvox-ru, espeak-ng ru), Whisper base, the multilingual scorer",
    )
    args = parser.parse_args()
    language = args.language
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        answers = make_answers(args.answers, folder, language)
        clean = [pcm16k(a[2]) for a in answers]
        lengths = [len(p) / 32000 for p in clean]
        engine = FasterWhisperEngine(language=language)
        model = "tiny.en" if language == "en" else "base"
        scorer = ScorerByLanguage(LocalScorer(), MultilingualScorer())
        scorer.warm_up(language)
        rtf = real_time_factor(engine, clean[:5])
        to_transcript, to_score, texts, partials = asyncio.run(
            delays(engine, scorer, answers, args.speed, args.gap, language)
        )
        live_wer = [wer(a[0], t) for a, t in zip(answers, texts, strict=True)]
        for streams in [int(n) for n in args.concurrent.split(",") if n]:
            together = answers[:streams]
            to_score_n, partial_rate = asyncio.run(
                concurrent(engine, scorer, together, args.gap, language)
            )
            print(
                f"{streams} candidates answering at once (real time, one process): score after "
                f"moving on p50 {percentile(to_score_n, 50):.2f} s, "
                f"max {max(to_score_n):.2f} s; {partial_rate:.0f} partial updates "
                f"per minute of speech"
            )
        sent = answers[: args.webrtc]
        received = asyncio.run(through_webrtc(sent, folder)) if args.webrtc else []
        print(
            f"{len(answers)} answers, {min(lengths):.0f}-{max(lengths):.0f} s each "
            f"({sum(lengths) / 60:.1f} min of speech), fed at {args.speed:g}x real time, "
            f"moving on {args.gap:g} s after each; "
            f"{__import__('os').cpu_count()} CPUs"
        )
        print(f"faster-whisper {model} int8, beam {engine.beam_size}: real-time factor {rtf:.3f}")
        print(
            f"partial texts shown while speaking: {partials / (sum(lengths) / 60):.0f} per "
            f"minute of speech (fed at {args.speed:g}x: about one every "
            f"{sum(lengths) / args.speed / max(1, partials):.1f} s of wall time)"
        )
        print(
            f"final transcript after moving on: p50 {percentile(to_transcript, 50):.2f} s, "
            f"p95 {percentile(to_transcript, 95):.2f} s"
        )
        print(
            f"score shown after moving on:      p50 {percentile(to_score, 50):.2f} s, "
            f"p95 {percentile(to_score, 95):.2f} s"
        )
        by_tool = {
            tool: statistics.mean(
                w for w, a in zip(live_wer, answers, strict=True) if a[3].startswith(tool)
            )
            for tool in dict.fromkeys(a[3].split(":")[0] for a in answers)
        }
        print(
            f"live transcript WER: mean {statistics.mean(live_wer):.2f} ("
            + ", ".join(f"{tool} {w:.2f}" for tool, w in by_tool.items())
            + ")"
        )

        for (text, _, wav, voice), pcm in zip(sent, received, strict=True):
            clean_wer = wer(text, engine.transcribe(pcm16k(wav)))
            rtc_wer = wer(text, engine.transcribe(pcm))
            print(f"WER {voice:>14}: clean WAV {clean_wer:.2f}, through WebRTC {rtc_wer:.2f}")


if __name__ == "__main__":
    main()
