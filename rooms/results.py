"""An interview's record for review: facts, topics, each question with transcript and score."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms import conduct
from rooms.code_documents import code_summary, scratch_summary
from rooms.errors import InvalidInput, NotFound
from rooms.models import Interview, InterviewQuestion, Recording, Score, Topic, TopicCheck

VERDICTS = {
    "hire": "Hire",
    "maybe": "Maybe: another interview",
    "no_hire": "No hire",
}


async def set_verdict(
    session: AsyncSession, interview: Interview, verdict: str | None, note: str
) -> None:
    """The recruiter's final verdict on the interview (None clears it)."""
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidInput("verdict", "Choose Hire, Maybe or No hire.")
    if len(note) > 5000:
        raise InvalidInput("verdict_note", "Keep the verdict note under 5,000 characters.")
    interview.verdict = verdict
    interview.verdict_note = note.strip()
    await session.flush()


CHECK_BELOW = 0.6
"""An AI score stated with less confidence than this asks the recruiter to check the answer."""


def needs_check(confidence: float) -> bool:
    return confidence < CHECK_BELOW


def score_facts(score: Score) -> dict[str, Any]:
    """The reasons of an AI score, as every view of it shows them."""
    return {
        "rationale": score.rationale,
        "covered": score.covered,
        "missing": score.missing,
        "follow_up": score.follow_up,
        "note": score.note,
        "confidence": score.confidence,
        "check": needs_check(score.confidence),
        "doubt": score.doubt,
        "misconceptions": score.misconceptions,
    }


def effective(score: Score) -> float:
    """The recruiter's override where there is one, else the AI's score."""
    return score.override if score.override is not None else score.score


async def interview_result(session: AsyncSession, interview: Interview) -> dict[str, Any]:
    """Everything the results page and the JSON export show, as plain data."""
    interview = await conduct.load(session, interview.id)
    answers, scores = await conduct.answers_and_scores(session, interview.id)
    checked = {
        row.topic_id: row.checked_at
        for row in await session.scalars(
            select(TopicCheck).where(TopicCheck.interview_id == interview.id)
        )
    }
    topics = list(
        await session.scalars(
            select(Topic)
            .where(Topic.specialization_id == interview.specialization_id)
            .order_by(Topic.position)
        )
    )
    recordings = list(
        await session.scalars(
            select(Recording)
            .where(Recording.interview_id == interview.id)
            .order_by(Recording.role, Recording.segment)
        )
    )
    note = await conduct.notes_of(session, interview.id)
    code = await code_summary(session, interview.id)
    scratch = await scratch_summary(
        session, interview.id, await conduct.scratch_language_used(session, interview.id)
    )
    questions = []
    for link in interview.questions:
        q = link.question
        answer = answers.get(link.position)
        score = scores.get(link.position)
        questions.append(
            {
                "position": link.position,
                "slug": q.slug,
                "text": q.text,
                "expected_answer": q.expected_answer,
                "key_points": list(q.key_points),
                "asked": answer is not None or score is not None,
                # Moved on from, transcript not stored yet (queued, or being transcribed).
                "pending": answer is not None and not answer.engine,
                "transcript": answer.text if answer else "",
                "segments": answer.segments if answer else [],
                "code": code.get(link.position),
                "answer_started_at": answer.started_at.isoformat()
                if answer and answer.started_at
                else None,
                "score": None
                if score is None
                else {
                    "ai": score.score,
                    "override": score.override,
                    "effective": effective(score),
                    "scorer": score.scorer,
                    **score_facts(score),
                },
            }
        )
    scored = [effective(s) for s in scores.values()]
    duration = None
    if interview.started_at and interview.ended_at:
        duration = (interview.ended_at - interview.started_at).total_seconds()
    return {
        "id": interview.id,
        "state": interview.state,
        "candidate": {"name": interview.candidate_name, "email": interview.candidate_email},
        "interviewer": {"name": interview.interviewer_name, "email": interview.interviewer_email},
        "specialization": interview.specialization.name,
        "created_at": interview.created_at.isoformat(),
        "started_at": interview.started_at.isoformat() if interview.started_at else None,
        "ended_at": interview.ended_at.isoformat() if interview.ended_at else None,
        "duration_s": duration,
        "overall_score": round(sum(scored) / len(scored), 1) if scored else None,
        "verdict": interview.verdict,
        "verdict_label": VERDICTS.get(interview.verdict or "", ""),
        "verdict_note": interview.verdict_note or "",
        "topics": [{"title": t.title, "covered": t.id in checked} for t in topics],
        "questions": questions,
        "scratch": scratch,
        "notes": note.text if note else "",
        "recordings": [
            {
                "id": r.id,
                "role": r.role,
                "segment": r.segment,
                "started_at": r.started_at.isoformat(),
                "started_ts": r.started_at.timestamp(),
                "duration_s": r.duration_s,
                "gap_before_s": r.gap_before_s,
                "lost_s": r.lost_s or 0.0,
                "gaps": [
                    {
                        "at": a,
                        "length": b,
                        "left": 100 * a / r.duration_s,
                        "width": 100 * b / r.duration_s,
                    }
                    for a, b in (r.gaps or [])
                    if r.duration_s > 0
                ],
            }
            for r in recordings
        ],
    }


async def override_score(
    session: AsyncSession, interview_id: int, position: int, value: float | None
) -> Score:
    """The recruiter's own score beside the AI's (None removes the override)."""
    if value is not None and not 0 <= value <= 10:
        raise InvalidInput("override", "A score is between 0 and 10.")
    score = await session.scalar(
        select(Score).where(Score.interview_id == interview_id, Score.position == position)
    )
    if score is None:
        exists = await session.scalar(
            select(InterviewQuestion).where(
                InterviewQuestion.interview_id == interview_id,
                InterviewQuestion.position == position,
            )
        )
        if exists is None:
            raise NotFound("question")
        score = Score(
            interview_id=interview_id,
            position=position,
            score=0.0,
            rationale="Not scored by the AI.",
            scorer="none",
        )
        session.add(score)
    score.override = value
    await session.flush()
    return score


async def recording_of(session: AsyncSession, interview_id: int, recording_id: int) -> Recording:
    recording = await session.get(Recording, recording_id)
    if recording is None or recording.interview_id != interview_id:
        raise NotFound("recording")
    return recording


async def delete_interview(session: AsyncSession, interview: Interview) -> None:
    """Remove the interview and everything stored with it (the files are the caller's)."""
    await session.delete(interview)
    await session.flush()
