"""A Russian interview end to end through the real media path: an aiortc peer speaks a
festvox-ru answer, Whisper base (told the language, not guessing it) writes it in Russian, and
the multilingual scorer scores it against the Russian key points."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from rooms.bank import bundled_banks_in, import_banks
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Answer, Interview, InterviewQuestion, Question, Score
from tests.conftest import Mailbox
from tests.rtc import SpeakingPeer, festival_ru, wav_seconds
from tests.test_candidate_and_presence import next_of
from tests.test_live_pipeline import read_all
from tests.test_recording import in_call
from tests.wer import wer

GIL = next(q for b in bundled_banks_in("ru") for q in b.questions if q.slug == "ru-py-gil")
SPOKEN = (
    "Глобальная блокировка интерпретатора позволяет только одному потоку за раз "
    "выполнять байткод питона, поэтому вычисления на чистом питоне потоки не ускоряют. "
    "Во время ввода-вывода блокировка отпускается, так что для сетевых запросов потоки "
    "помогают, а для вычислений на нескольких ядрах берут пул процессов."
)


async def russian_interview(settings, interview_id: int) -> None:  # type: ignore[no-untyped-def]
    """The interview becomes a Russian one asking the Russian GIL question first (as choosing
    Russian and the Russian bank at setup does)."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine).begin() as session:
        await import_banks(session, bundled_banks_in("ru"))
        await session.flush()
        interview = await session.get(Interview, interview_id)
        assert interview is not None
        interview.language = "ru"
        question = await session.scalar(select(Question).where(Question.slug == GIL.slug))
        first = await session.scalar(
            select(InterviewQuestion).where(
                InterviewQuestion.interview_id == interview_id, InterviewQuestion.position == 1
            )
        )
        assert question is not None and first is not None
        first.question_id = question.id
    await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_russian_answer_is_transcribed_in_russian_and_scored(
    client, make_client, mailbox: Mailbox, settings, tmp_path: Path
) -> None:
    interview_id, _, token, _, candidate_ws = await in_call(
        client, make_client, mailbox, "ru@example.com"
    )
    await russian_interview(settings, interview_id)
    recruiter_ws = await client.ws_connect("/ws")
    await recruiter_ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    await next_of(recruiter_ws, "joined")
    await client.post(
        f"/api/interviews/{interview_id}/technical", json={}, headers={"X-CSRF-Token": token}
    )
    wav = festival_ru(tmp_path / "gil.wav", SPOKEN)
    peer = SpeakingPeer(candidate_ws, wav)
    await peer.start()
    candidate_reads = asyncio.create_task(read_all(candidate_ws))
    partials: list[str] = []
    finished = asyncio.create_task(peer.wait(limit=wav_seconds(wav) + 15))
    while not finished.done():
        try:
            message = json.loads((await recruiter_ws.receive(timeout=0.5)).data)
        except TimeoutError:
            continue
        if message["type"] == "event" and message["name"] == "transcript":
            partials.append(message["data"]["text"])
    await finished
    await asyncio.sleep(1.0)  # the last words' pause
    moved_at = time.monotonic()
    await client.post(
        f"/api/interviews/{interview_id}/question",
        json={"position": 2},
        headers={"X-CSRF-Token": token},
    )
    score = None
    async with asyncio.timeout(40):
        while score is None:
            message = json.loads((await recruiter_ws.receive()).data)
            if message["type"] != "event" or message["data"].get("position") != 1:
                continue
            if message["name"] == "score":
                score = message["data"]
    delay = time.monotonic() - moved_at
    await peer.close()
    candidate_reads.cancel()
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        answer = await session.scalar(
            select(Answer).where(Answer.interview_id == interview_id, Answer.position == 1)
        )
        stored = await session.scalar(
            select(Score).where(Score.interview_id == interview_id, Score.position == 1)
        )
    await engine.dispose()
    assert answer is not None and stored is not None
    error = wer(SPOKEN, answer.text)
    print(
        f"\nfestvox-ru through WebRTC: WER {error:.2f}; score {score['score']} after {delay:.2f} s"
    )
    print(f"transcript: {answer.text}")
    assert partials, "no text reached the recruiter while the candidate spoke"
    cyrillic = sum("а" <= c.lower() <= "я" or c in "ёЁ" for c in answer.text)
    assert cyrillic > 0.8 * sum(c.isalpha() for c in answer.text), answer.text
    assert error < 0.45
    assert stored.scorer == "multilingual" and stored.score == score["score"]
    assert score["score"] >= 5, score  # most of the expected answer, said plainly
    assert any("а" <= c <= "я" for c in score["rationale"]), score["rationale"]
