"""Stored answers: a question asked again (the recruiter went back) adds to its answer instead of
replacing it, whatever order its jobs finish in and however often one is delivered."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from assistant.scorer import QuestionSpec
from jobs.queue import Job
from rooms import conduct
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Answer, Score
from tests.conftest import Mailbox
from tests.test_conduct import api, started_interview
from web.keys import ANSWERS

FIRST = "A generator yields values lazily."
SECOND = "It keeps its state between calls, so it can stream a large file line by line."


def answer_job(interview_id: int, start: float, end: float, text: str) -> Job:
    body = {
        "interview": interview_id,
        "position": 1,
        "started_at": start,
        "at": end + 0.5,
        "pieces": [{"start": start + 0.2, "end": end, "text": text}],
    }
    return Job(f"job-{start}", "answer", body)


async def test_a_question_asked_again_keeps_both_answers_and_scores_the_whole(
    client, make_client, mailbox: Mailbox, settings
) -> None:
    interview_id, _, token, _ = await started_interview(client, make_client, mailbox)
    assert (await api(client, token, f"/api/interviews/{interview_id}/technical", {}))[0] == 200
    work = client.app[ANSWERS].work
    t = time.time() - 60
    first = answer_job(interview_id, t, t + 4, FIRST)
    second = answer_job(interview_id, t + 20, t + 24, SECOND)  # after Previous, then Next
    # The second visit's job finishes first; the first visit's job is delivered twice.
    await asyncio.gather(work.answer(second), work.answer(first), work.answer(first))

    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        answer = await session.scalar(select(Answer).where(Answer.interview_id == interview_id))
        scores = list(
            await session.scalars(select(Score).where(Score.interview_id == interview_id))
        )
        spec = await conduct.question_spec(session, interview_id, 1)
        # A pending mark (the recruiter moving on again) leaves the stored answer as it is.
        await conduct.save_answer(session, interview_id, 1, "", [], None, None, "")
        assert answer.text == f"{FIRST} {SECOND}" and answer.engine
        count = await session.scalar(select(func.count()).select_from(Answer))
    await engine.dispose()
    assert count == 1
    assert answer.text == f"{FIRST} {SECOND}"
    assert [s["text"] for s in answer.segments] == [FIRST, SECOND]
    assert answer.started_at == datetime.fromtimestamp(t, UTC)
    assert answer.ended_at == datetime.fromtimestamp(t + 24.5, UTC)
    # One score, of the whole answer.
    [score] = scores
    whole = work.scorer.score(
        QuestionSpec(
            spec.text,
            spec.expected_answer,
            tuple(spec.key_points),
            tuple(spec.misconceptions),
        ),
        answer.text,
    )
    assert score.score == whole.score and score.rationale == whole.rationale


async def test_a_score_of_an_older_version_of_the_answer_is_not_stored(
    client, make_client, mailbox: Mailbox, settings
) -> None:
    interview_id, _, token, _ = await started_interview(client, make_client, mailbox)
    assert (await api(client, token, f"/api/interviews/{interview_id}/technical", {}))[0] == 200
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine).begin() as session:
        now = datetime.now(UTC)
        seg = {"start": now.timestamp(), "end": now.timestamp() + 1, "text": FIRST}
        await conduct.save_answer(session, interview_id, 1, FIRST, [seg], now, now, "test")
        args = (session, interview_id, 1, 3.0, "old", [], [], "", "local", "")
        assert await conduct.save_score(*args, answer_text="something said before") is None
        assert await conduct.save_score(*args, answer_text=FIRST) is not None
    await engine.dispose()
