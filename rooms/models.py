"""SQLAlchemy models of the domain: who interviews whom, on what, and what happened."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from rooms.states import InterviewState


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and always returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Recruiter(Base):
    """A signed-in user who sets up and conducts interviews."""

    __tablename__ = "recruiters"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    interviews: Mapped[list[Interview]] = relationship(back_populates="recruiter")


class PasswordSetupLink(Base):
    """A single-use, expiring link that lets a recruiter set a password; only its hash is kept."""

    __tablename__ = "password_setup_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    recruiter_id: Mapped[int] = mapped_column(ForeignKey("recruiters.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    recruiter: Mapped[Recruiter] = relationship()


class RecruiterSession(Base):
    """A signed-in browser of a recruiter; deleting the row signs that browser out everywhere
    at once (every node reads the same table). Only a hash of the cookie's token is kept."""

    __tablename__ = "recruiter_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    recruiter_id: Mapped[int] = mapped_column(
        ForeignKey("recruiters.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    """Updated at most once a minute, so a busy page does not write on every request."""
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The absolute end of the session, however active it is."""
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ip_address: Mapped[str] = mapped_column(String(64), default="")


class Specialization(Base):
    """An interview technology, e.g. "Python backend", with its topics and questions."""

    __tablename__ = "specializations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    topics: Mapped[list[Topic]] = relationship(
        back_populates="specialization", order_by="Topic.position", cascade="all, delete-orphan"
    )
    questions: Mapped[list[Question]] = relationship(
        back_populates="specialization", order_by="Question.position", cascade="all, delete-orphan"
    )


class Topic(Base):
    """A discussion topic of the Interview plan."""

    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("specialization_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    specialization_id: Mapped[str] = mapped_column(
        ForeignKey("specializations.id", ondelete="CASCADE")
    )
    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    prompt: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    specialization: Mapped[Specialization] = relationship(back_populates="topics")


class Question(Base):
    """A technical question with what the recruiter needs to judge the answer."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    specialization_id: Mapped[str] = mapped_column(
        ForeignKey("specializations.id", ondelete="CASCADE")
    )
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    difficulty: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    alternative: Mapped[str] = mapped_column(Text)
    expected_answer: Mapped[str] = mapped_column(Text)
    key_points: Mapped[list[str]] = mapped_column(JSON, default=list)
    misconceptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(16), default="talk")
    """`talk`, or `code`: the candidate also writes `code` (rooms.code_tasks.CodeTask)."""
    code: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    specialization: Mapped[Specialization] = relationship(back_populates="questions")


class Interview(Base):
    """One meeting between a recruiter and a candidate, from setup to results."""

    __tablename__ = "interviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    recruiter_id: Mapped[int] = mapped_column(ForeignKey("recruiters.id", ondelete="CASCADE"))
    specialization_id: Mapped[str] = mapped_column(ForeignKey("specializations.id"))
    state: Mapped[InterviewState] = mapped_column(String(16), default=InterviewState.WAITING)
    interviewer_name: Mapped[str] = mapped_column(String(200))
    interviewer_email: Mapped[str] = mapped_column(String(320))
    candidate_name: Mapped[str] = mapped_column(String(200))
    candidate_email: Mapped[str] = mapped_column(String(320))
    candidate_token: Mapped[str] = mapped_column(String(64), unique=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(16), default="en")
    """The interview's language (a code such as "en" or "ru"): its candidate's pages and emails,
    its question bank, and the language its answers are transcribed and scored in."""
    question_count: Mapped[int] = mapped_column(Integer, default=10)
    current_question: Mapped[int | None] = mapped_column(Integer)
    """1-based position of the question on screen during the technical part."""
    scratch_language: Mapped[str | None] = mapped_column(String(16))
    """The language of the recruiter's scratch pad while it is open on both pages (None: closed)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    candidate_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verdict: Mapped[str | None] = mapped_column(String(16))
    """The recruiter's final verdict: see rooms.results.VERDICTS."""
    verdict_note: Mapped[str] = mapped_column(Text, default="")

    recruiter: Mapped[Recruiter] = relationship(back_populates="interviews")
    specialization: Mapped[Specialization] = relationship()
    consents: Mapped[list[Consent]] = relationship(
        back_populates="interview", cascade="all, delete-orphan", order_by="Consent.id"
    )
    events: Mapped[list[InterviewEvent]] = relationship(
        back_populates="interview", cascade="all, delete-orphan", order_by="InterviewEvent.id"
    )
    questions: Mapped[list[InterviewQuestion]] = relationship(
        cascade="all, delete-orphan", order_by="InterviewQuestion.position"
    )


class Consent(Base):
    """A consent given by the interviewer or the candidate, with its time and policy version."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("interview_id", "party", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"))
    party: Mapped[str] = mapped_column(String(16))  # interviewer | candidate
    kind: Mapped[str] = mapped_column(String(32))  # see rooms.consents.ConsentKind
    policy_version: Mapped[str] = mapped_column(String(32))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip_address: Mapped[str] = mapped_column(String(64), default="")

    interview: Mapped[Interview] = relationship(back_populates="consents")


class InterviewEvent(Base):
    """The interview's timeline: each state change and stage event with its wall-clock time.

    Recordings store their own start times, so an event's offset into a recording is
    `event.at - recording.started_at`.
    """

    __tablename__ = "interview_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interviews.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    interview: Mapped[Interview] = relationship(back_populates="events")


class InterviewQuestion(Base):
    """A bank question chosen for an interview, at its 1-based position."""

    __tablename__ = "interview_questions"
    __table_args__ = (UniqueConstraint("interview_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"))

    question: Mapped[Question] = relationship()


class TopicCheck(Base):
    """A topic of the Interview plan the recruiter marked as completed."""

    __tablename__ = "topic_checks"
    __table_args__ = (UniqueConstraint("interview_id", "topic_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Note(Base):
    """The recruiter's interview notes, one text per interview, autosaved."""

    __tablename__ = "notes"

    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interviews.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recording(Base):
    """One continuous segment of one participant's audio; a reconnect starts the next segment.

    `started_at` is the wall-clock time of the segment's first sample, so any timeline event
    falls at `event.at - started_at` seconds into the file.
    """

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("interview_id", "role", "segment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interviews.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # recruiter | candidate
    segment: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))
    codec: Mapped[str] = mapped_column(String(16), default="opus")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    gap_before_s: Mapped[float | None] = mapped_column(Float)
    """Seconds between the end of the previous segment and this one's start (None for the first)."""
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """Audio lost on the way (packets that never came), written as silence."""
    gaps: Mapped[list[list[float]] | None] = mapped_column(JSON)
    """[seconds into the file, length] of each loss long enough to mark on the timeline."""


class Answer(Base):
    """The candidate's transcribed answer to one technical question of an interview."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("interview_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interviews.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Committed pieces: [{"start": unix seconds, "end": unix seconds, "text": ...}]."""
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    engine: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Score(Base):
    """The AI assistant's score of an answer (and the recruiter's override, if any)."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("interview_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interviews.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    rationale: Mapped[str] = mapped_column(Text, default="")
    covered: Mapped[list[str]] = mapped_column(JSON, default=list)
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    follow_up: Mapped[str] = mapped_column(Text, default="")
    scorer: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    """0-1; below CHECK_BELOW the recruiter is asked to check the answer."""
    doubt: Mapped[str] = mapped_column(Text, default="")
    """The sentence of the answer that caused the most doubt."""
    misconceptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The rubric's misconceptions the answer asserts."""
    override: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScoreCalibration(Base):
    """A bank's correction of the AI score, fitted on recruiters' overrides and applied only
    after an operator chose to (`p2p-interview calibrate-scorer --apply`)."""

    __tablename__ = "score_calibrations"

    specialization_id: Mapped[str] = mapped_column(
        ForeignKey("specializations.id", ondelete="CASCADE"), primary_key=True
    )
    scale: Mapped[float] = mapped_column(Float)
    offset: Mapped[float] = mapped_column(Float)
    answers: Mapped[int] = mapped_column(Integer)
    """How many overridden answers it was fitted on."""
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def apply(self, score: float) -> float:
        return round(min(10.0, max(0.0, self.scale * score + self.offset)), 1)


class CodeEdit(Base):
    """One Yjs update of an interview's shared code (every question's text in one document),
    in the order the server received them: the document is their union, the replay their
    sequence in time."""

    __tablename__ = "code_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interviews.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    role: Mapped[str] = mapped_column(String(16))  # recruiter | candidate
    update: Mapped[bytes] = mapped_column(LargeBinary)


class CodeResult(Base):
    """The last run of a coding question's tests: the visible ones in the candidate's browser,
    the hidden ones in the recruiter's (they are never sent to the candidate)."""

    __tablename__ = "code_results"
    __table_args__ = (UniqueConstraint("interview_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    visible: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """{"status", "output", "tests": [{"passed", ...}], "at"} of the candidate's last run."""
    hidden: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """{"status", "passed", "total", "failing": [...], "code", "at"}: part of the verdict."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
