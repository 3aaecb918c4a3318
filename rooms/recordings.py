"""Recording segments on the interview's timeline, and where each answer lies in them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.consents import REQUIRED
from rooms.models import Consent, Interview, InterviewEvent, Recording


async def both_consented(session: AsyncSession, interview_id: int) -> bool:
    """Recording may start only when the interviewer and the candidate gave every consent."""
    rows = await session.execute(
        select(Consent.party, Consent.kind).where(Consent.interview_id == interview_id)
    )
    given = {(party, kind) for party, kind in rows}
    return all((p.value, k.value) in given for p, kinds in REQUIRED.items() for k in kinds)


async def start_segment(
    session: AsyncSession, interview_id: int, role: str, path: str, started_at: datetime
) -> Recording:
    """Register the next segment of this participant, with the gap since the previous one."""
    previous = await session.scalar(
        select(Recording)
        .where(Recording.interview_id == interview_id, Recording.role == role)
        .order_by(Recording.segment.desc())
        .limit(1)
    )
    gap = None
    if previous is not None:
        end = previous.started_at.timestamp() + previous.duration_s
        gap = max(0.0, started_at.timestamp() - end)
    recording = Recording(
        interview_id=interview_id,
        role=role,
        segment=0 if previous is None else previous.segment + 1,
        path=path,
        started_at=started_at,
        gap_before_s=gap,
    )
    session.add(recording)
    await session.flush()
    return recording


async def update_segment(
    session: AsyncSession,
    recording_id: int,
    duration_s: float,
    closed_at: datetime | None,
    lost_s: float = 0.0,
    gaps: list[tuple[float, float]] | None = None,
) -> None:
    recording = await session.get(Recording, recording_id)
    if recording is not None:
        recording.duration_s = duration_s
        recording.lost_s = round(lost_s, 2)
        recording.gaps = [[a, b] for a, b in gaps] if gaps else None
        if closed_at is not None:
            recording.closed_at = closed_at


async def settle_left_segment(session: AsyncSession, path: str, written_s: float) -> bool:
    """A segment file a dead process left: if it still belongs to a recording, its row gets the
    duration the file holds (the row's last report can be seconds older) and the next segment
    its true gap. False: the recording was deleted or purged meanwhile."""
    recording = await session.scalar(select(Recording).where(Recording.path == path).limit(1))
    if recording is None:
        return False
    if recording.closed_at is None and written_s > recording.duration_s:
        recording.duration_s = written_s
        recording.closed_at = recording.started_at + timedelta(seconds=written_s)
        following = await session.scalar(
            select(Recording).where(
                Recording.interview_id == recording.interview_id,
                Recording.role == recording.role,
                Recording.segment == recording.segment + 1,
            )
        )
        if following is not None:
            end = recording.started_at.timestamp() + written_s
            following.gap_before_s = max(0.0, following.started_at.timestamp() - end)
        await session.flush()
    return True


async def segments(session: AsyncSession, interview_id: int, role: str) -> list[Recording]:
    rows = await session.scalars(
        select(Recording)
        .where(Recording.interview_id == interview_id, Recording.role == role)
        .order_by(Recording.segment)
    )
    return list(rows)


@dataclass(frozen=True)
class Cut:
    """A stretch of one segment file: from `start_s` to `end_s` seconds into it."""

    recording: Recording
    start_s: float
    end_s: float


async def question_window(
    session: AsyncSession, interview: Interview, position: int
) -> tuple[datetime, datetime] | None:
    """Wall-clock time from question `position` appearing until the next move (or the end)."""
    events = list(
        await session.scalars(
            select(InterviewEvent)
            .where(InterviewEvent.interview_id == interview.id)
            .order_by(InterviewEvent.at, InterviewEvent.id)
        )
    )
    start: datetime | None = None
    for event in events:
        moves = event.kind == "question" or (
            event.kind == "state" and event.data.get("to") != "technical"
        )
        if start is not None and moves:
            return start, event.at
        if event.kind == "question" and event.data.get("position") == position:
            start = event.at
    if start is not None and interview.ended_at:
        return start, interview.ended_at
    return None


def cuts(recordings: list[Recording], start: datetime, end: datetime) -> list[Cut]:
    """The parts of the segments that cover [start, end) of wall-clock time."""
    result = []
    for recording in recordings:
        seg_start = recording.started_at.timestamp()
        lo = max(start.timestamp(), seg_start)
        hi = min(end.timestamp(), seg_start + recording.duration_s)
        if hi > lo:
            result.append(Cut(recording, lo - seg_start, hi - seg_start))
    return result


async def expired(session: AsyncSession, older_than: datetime) -> list[Recording]:
    """Recording segments that started before `older_than` (for the retention setting)."""
    rows = await session.scalars(select(Recording).where(Recording.started_at < older_than))
    return list(rows)
