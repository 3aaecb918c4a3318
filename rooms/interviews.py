"""Setting up interviews, finding them safely, candidates joining, and stage changes."""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from rooms.accounts import normalize_email
from rooms.consents import REQUIRED, ConsentKind, Party
from rooms.errors import InvalidInput, NotFound
from rooms.models import (
    Consent,
    Interview,
    InterviewEvent,
    InterviewQuestion,
    Question,
    Recruiter,
    Score,
    Specialization,
    utcnow,
)
from rooms.states import InterviewState, check_transition, is_live

# 32 random bytes = 256 bits, URL-safe base64 without padding: 43 characters.
CANDIDATE_TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_NAME_LENGTH = 200
MAX_SCHEDULE_AHEAD = timedelta(days=366)
DEFAULT_QUESTION_COUNT = 10


@dataclass(frozen=True)
class Person:
    """A validated name and email."""

    name: str
    email: str


def validate_person(name: str, email: str, who: str) -> Person:
    """Check a name and email typed on a form; `who` prefixes the field names."""
    clean = " ".join((name or "").split())
    if not clean:
        raise InvalidInput(f"{who}_name", "Enter a name.")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{who}_name", "Use at most %(count)s characters.", count=MAX_NAME_LENGTH
        )
    if any(ch in clean for ch in "<>\x00"):
        raise InvalidInput(f"{who}_name", "A name cannot contain < or >.")
    return Person(clean, normalize_email(email, f"{who}_email"))


def check_consents(party: Party, given: set[ConsentKind]) -> None:
    """Raise InvalidInput naming the first required consent that was not given."""
    for kind in REQUIRED[party]:
        if kind not in given:
            raise InvalidInput(f"consent_{kind.value}", "This consent is required to continue.")


@functools.cache
def time_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows (read once: it walks the zone database)."""
    return frozenset(available_timezones()) | {"UTC"}


def parse_schedule(
    day: str, clock: str, zone: str, now: datetime | None = None
) -> tuple[datetime, str]:
    """A future date and time in the recruiter's time zone, as (UTC datetime, zone name)."""
    now = now or utcnow()
    zone = zone or "UTC"
    if zone not in time_zones():
        # Not only unknown names: "Europe" is a folder of the zone database (IsADirectoryError)
        # and a very long name fails in the file system, so only listed zones are opened.
        raise InvalidInput("time_zone", "Unknown time zone %(zone)r.", zone=zone[:64])
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput("time_zone", "Unknown time zone %(zone)r.", zone=zone[:64]) from None
    try:
        local = datetime.combine(date.fromisoformat(day[:20]), time.fromisoformat(clock[:20]))
        at = local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
    except (ValueError, OverflowError):
        # OverflowError: 9999-12-31 23:59 at UTC-12 is past the last representable instant.
        raise InvalidInput("scheduled_date", "Enter a date and a time.") from None
    if at < now - timedelta(minutes=1):
        raise InvalidInput("scheduled_date", "Choose a date and time in the future.")
    if at > now + MAX_SCHEDULE_AHEAD:
        raise InvalidInput("scheduled_date", "Choose a date within the next year.")
    return at, tz.key


def _consent(
    interview_id: int,
    party: Party,
    kind: ConsentKind,
    policy_version: str,
    given_at: datetime,
    ip_address: str,
) -> Consent:
    return Consent(
        interview_id=interview_id,
        party=party.value,
        kind=kind.value,
        policy_version=policy_version,
        given_at=given_at,
        ip_address=ip_address,
    )


async def create_interview(
    session: AsyncSession,
    recruiter: Recruiter,
    specialization_id: str,
    interviewer: Person,
    candidate: Person,
    interviewer_consents: dict[ConsentKind, datetime],
    policy_version: str,
    scheduled_at: datetime | None = None,
    time_zone: str = "UTC",
    ip_address: str = "",
    question_count: int = DEFAULT_QUESTION_COUNT,
) -> Interview:
    """Create an interview: now (waiting) or later (scheduled), with its candidate link."""
    check_consents(Party.INTERVIEWER, set(interviewer_consents))
    if await session.get(Specialization, specialization_id) is None:
        raise InvalidInput("specialization", "Choose a specialization from the list.")
    state = InterviewState.SCHEDULED if scheduled_at else InterviewState.WAITING
    interview = Interview(
        recruiter_id=recruiter.id,
        specialization_id=specialization_id,
        state=state,
        interviewer_name=interviewer.name,
        interviewer_email=interviewer.email,
        candidate_name=candidate.name,
        candidate_email=candidate.email,
        candidate_token=secrets.token_urlsafe(CANDIDATE_TOKEN_BYTES),
        scheduled_at=scheduled_at,
        time_zone=time_zone,
    )
    session.add(interview)
    await session.flush()
    await choose_questions(session, interview, question_count)
    for kind, given_at in interviewer_consents.items():
        session.add(
            _consent(interview.id, Party.INTERVIEWER, kind, policy_version, given_at, ip_address)
        )
    session.add(
        InterviewEvent(interview_id=interview.id, kind="created", data={"state": state.value})
    )
    await session.flush()
    return interview


async def choose_questions(session: AsyncSession, interview: Interview, count: int) -> None:
    """The first `count` questions of the specialization, in the bank's order."""
    available = list(
        await session.scalars(
            select(Question)
            .where(Question.specialization_id == interview.specialization_id)
            .order_by(Question.position)
        )
    )
    if not 1 <= count <= len(available):
        raise InvalidInput(
            "question_count",
            "Choose between 1 and %(count)s technical questions.",
            count=len(available),
        )
    interview.question_count = count
    for position, question in enumerate(available[:count], start=1):
        session.add(
            InterviewQuestion(interview_id=interview.id, position=position, question_id=question.id)
        )
    await session.flush()


def _with_details() -> Any:
    return (
        selectinload(Interview.specialization),
        selectinload(Interview.consents),
        selectinload(Interview.recruiter),
    )


async def get_for_recruiter(
    session: AsyncSession, recruiter_id: int, interview_id: int
) -> Interview:
    """The recruiter's own interview; someone else's looks exactly like a missing one."""
    interview = await session.scalar(
        select(Interview)
        .where(Interview.id == interview_id, Interview.recruiter_id == recruiter_id)
        .options(*_with_details())
    )
    if interview is None:
        raise NotFound("interview")
    return interview


async def get_by_candidate_token(session: AsyncSession, token: str) -> Interview:
    """The interview behind a candidate link; malformed or unknown tokens are NotFound."""
    if not token or not _TOKEN_RE.match(token):
        raise NotFound("candidate link")
    interview = await session.scalar(
        select(Interview).where(Interview.candidate_token == token).options(*_with_details())
    )
    if interview is None:
        raise NotFound("candidate link")
    return interview


async def list_for_recruiter(
    session: AsyncSession, recruiter_id: int, search: str = "", state: str = ""
) -> list[Interview]:
    """The recruiter's interviews, newest first; `search` matches candidate name or email."""
    query = (
        select(Interview)
        .where(Interview.recruiter_id == recruiter_id)
        .options(selectinload(Interview.specialization))
        .order_by(Interview.created_at.desc(), Interview.id.desc())
    )
    if search.strip():
        pattern = f"%{search.strip().lower()[:100]}%"
        query = query.where(
            func.lower(Interview.candidate_name).like(pattern)
            | func.lower(Interview.candidate_email).like(pattern)
        )
    if state in {s.value for s in InterviewState}:
        query = query.where(Interview.state == state)
    return list(await session.scalars(query))


async def overall_scores(session: AsyncSession, interview_ids: list[int]) -> dict[int, float]:
    """Mean score per interview (the recruiter's overrides count instead of the AI's)."""
    if not interview_ids:
        return {}
    rows = await session.execute(
        select(Score.interview_id, func.avg(func.coalesce(Score.override, Score.score)))
        .where(Score.interview_id.in_(interview_ids))
        .group_by(Score.interview_id)
    )
    return {interview_id: round(float(avg), 1) for interview_id, avg in rows}


def consents_given(interview: Interview, party: Party) -> set[ConsentKind]:
    return {ConsentKind(c.kind) for c in interview.consents if c.party == party.value}


def candidate_ready_to_join(interview: Interview) -> bool:
    """True once the candidate has given every consent their side needs."""
    return set(REQUIRED[Party.CANDIDATE]) <= consents_given(interview, Party.CANDIDATE)


async def transition(
    session: AsyncSession,
    interview: Interview,
    target: InterviewState,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> InterviewEvent:
    """Move the interview to `target` (or IllegalTransition), storing the change on its timeline."""
    now = now or utcnow()
    current = InterviewState(interview.state)
    check_transition(current, target)
    interview.state = target
    if target is InterviewState.PLAN:
        interview.started_at = now
    if target is InterviewState.COMPLETED:
        interview.ended_at = now
    event = InterviewEvent(
        interview_id=interview.id,
        at=now,
        kind="state",
        data={"from": current.value, "to": target.value, **(data or {})},
    )
    session.add(event)
    await session.flush()
    return event


async def open_waiting_room(session: AsyncSession, interview: Interview) -> None:
    """A scheduled interview becomes waiting when either side opens it."""
    if InterviewState(interview.state) is InterviewState.SCHEDULED:
        await transition(session, interview, InterviewState.WAITING)


async def candidate_joins(
    session: AsyncSession,
    interview: Interview,
    given: set[ConsentKind],
    policy_version: str,
    ip_address: str = "",
    now: datetime | None = None,
) -> None:
    """Store the candidate's consents (required) and the time they joined."""
    if not is_live(InterviewState(interview.state)):
        raise NotFound("candidate link")
    check_consents(Party.CANDIDATE, given)
    now = now or utcnow()
    already = consents_given(interview, Party.CANDIDATE)
    for kind in REQUIRED[Party.CANDIDATE]:
        if kind not in already:
            consent = _consent(interview.id, Party.CANDIDATE, kind, policy_version, now, ip_address)
            session.add(consent)
            interview.consents.append(consent)
    if interview.candidate_joined_at is None:
        interview.candidate_joined_at = now
    await open_waiting_room(session, interview)
    session.add(InterviewEvent(interview_id=interview.id, at=now, kind="candidate_joined", data={}))
    await session.flush()
