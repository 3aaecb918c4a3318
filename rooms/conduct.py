"""Conducting the interview (Part 2 of the guide): the plan, the technical part, notes, finish."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from rooms.code_tasks import CodeTask
from rooms.errors import InvalidInput, NotFound
from rooms.interviews import transition
from rooms.models import (
    Answer,
    Interview,
    InterviewEvent,
    InterviewQuestion,
    Note,
    Question,
    Score,
    Topic,
    TopicCheck,
    utcnow,
)
from rooms.states import IllegalTransition, InterviewState

MAX_NOTES_CHARS = 100_000
SCRATCH_LANGUAGES = ("python", "javascript")
"""What the recruiter's scratch pad can be opened in (the languages the browsers run)."""


@dataclass(frozen=True)
class QuestionOnScreen:
    """The current question; `expected_answer` and `key_points` are for the recruiter only."""

    position: int
    total: int
    slug: str
    text: str
    alternative: str
    expected_answer: str
    key_points: list[str]
    difficulty: str
    code: CodeTask | None = None
    """A coding question's task: the candidate sees the visible tests, the recruiter all."""

    def for_candidate(self) -> dict[str, Any]:
        """What the candidate may see: never the expected answer, solution or hidden tests."""
        shown: dict[str, Any] = {"position": self.position, "total": self.total, "text": self.text}
        if self.code:
            shown["code"] = self.code.for_candidate()
        return shown

    def for_recruiter(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "total": self.total,
            "slug": self.slug,
            "text": self.text,
            "alternative": self.alternative,
            "expected_answer": self.expected_answer,
            "key_points": self.key_points,
            "difficulty": self.difficulty,
            "code": self.code.for_recruiter() if self.code else None,
        }


async def load(session: AsyncSession, interview_id: int) -> Interview:
    """The interview with what the conducting screens show."""
    interview = await session.scalar(
        select(Interview)
        .where(Interview.id == interview_id)
        .options(
            selectinload(Interview.questions).selectinload(InterviewQuestion.question),
            selectinload(Interview.specialization),
        )
        .execution_options(populate_existing=True)
    )
    if interview is None:
        raise NotFound("interview")
    return interview


def current_question(interview: Interview) -> QuestionOnScreen | None:
    if InterviewState(interview.state) is not InterviewState.TECHNICAL:
        return None
    position = interview.current_question
    if position is None or not 1 <= position <= len(interview.questions):
        return None
    question = interview.questions[position - 1].question
    return QuestionOnScreen(
        position=position,
        total=len(interview.questions),
        slug=question.slug,
        text=question.text,
        alternative=question.alternative,
        expected_answer=question.expected_answer,
        key_points=list(question.key_points),
        difficulty=question.difficulty,
        code=CodeTask.from_dict(question.code) if question.code else None,
    )


def _require(interview: Interview, *states: InterviewState, action: str) -> None:
    state = InterviewState(interview.state)
    if state not in states:
        if state is InterviewState.COMPLETED:
            raise IllegalTransition(state, InterviewState.COMPLETED)
        raise InvalidInput(
            "state", "Cannot %(action)s in the %(stage)s stage.", action=action, stage=state.value
        )


async def set_topic(
    session: AsyncSession, interview: Interview, topic_id: int, checked: bool
) -> None:
    """Mark a plan topic completed (checked) or not; any order, any stage before the end."""
    _require(
        interview,
        InterviewState.PLAN,
        InterviewState.TECHNICAL,
        InterviewState.FINISHING,
        action="change the plan",
    )
    topic = await session.get(Topic, topic_id)
    if topic is None or topic.specialization_id != interview.specialization_id:
        raise NotFound("topic")
    await session.execute(
        delete(TopicCheck).where(
            TopicCheck.interview_id == interview.id, TopicCheck.topic_id == topic_id
        )
    )
    if checked:
        session.add(TopicCheck(interview_id=interview.id, topic_id=topic_id))
    session.add(
        InterviewEvent(
            interview_id=interview.id,
            kind="topic",
            data={"topic": topic.slug, "checked": checked},
        )
    )
    await session.flush()


async def checked_topics(session: AsyncSession, interview_id: int) -> set[int]:
    rows = await session.scalars(
        select(TopicCheck.topic_id).where(TopicCheck.interview_id == interview_id)
    )
    return set(rows)


async def _show(session: AsyncSession, interview: Interview, position: int) -> InterviewEvent:
    interview.current_question = position
    link = interview.questions[position - 1]
    event = InterviewEvent(
        interview_id=interview.id,
        kind="question",
        data={"position": position, "question": link.question.slug},
    )
    session.add(event)
    await session.flush()
    return event


async def start_technical(session: AsyncSession, interview: Interview) -> InterviewEvent:
    """ "Start technical part": the first question is shown to both sides."""
    if not interview.questions:
        raise InvalidInput("questions", "This interview has no technical questions.")
    await transition(session, interview, InterviewState.TECHNICAL)
    return await _show(session, interview, 1)


async def show_question(
    session: AsyncSession, interview: Interview, position: int
) -> InterviewEvent:
    """Move to question `position` (next, previous, or any other of this interview)."""
    _require(interview, InterviewState.TECHNICAL, action="change the question")
    total = len(interview.questions)
    if not 1 <= position <= total:
        raise InvalidInput(
            "position",
            "There is no question %(position)s: this interview has %(total)s.",
            position=position,
            total=total,
        )
    if position == interview.current_question:
        raise InvalidInput(
            "position", "Question %(position)s is already on screen.", position=position
        )
    return await _show(session, interview, position)


async def finish_technical(session: AsyncSession, interview: Interview) -> InterviewEvent:
    """After the last question: the Finish interview stage."""
    _require(interview, InterviewState.TECHNICAL, action="finish the technical part")
    if interview.current_question != len(interview.questions):
        raise InvalidInput(
            "position",
            "Finish the technical part after the last question (now on %(current)s of %(total)s).",
            current=interview.current_question,
            total=len(interview.questions),
        )
    interview.current_question = None
    return await transition(session, interview, InterviewState.FINISHING)


async def set_scratch(
    session: AsyncSession, interview: Interview, language: str | None
) -> InterviewEvent | None:
    """Open the scratch pad on both pages in `language`, switch its language, or close it
    (None); any stage of the call. Its code is one shared text of the interview's document,
    kept across openings. Returns the event on the timeline (None: nothing changed)."""
    _require(
        interview,
        InterviewState.PLAN,
        InterviewState.TECHNICAL,
        InterviewState.FINISHING,
        action="use the scratch pad",
    )
    if language is not None and language not in SCRATCH_LANGUAGES:
        raise InvalidInput("language", "The scratch pad runs Python or JavaScript.")
    if language == interview.scratch_language:
        return None
    interview.scratch_language = language
    event = InterviewEvent(interview_id=interview.id, kind="scratch", data={"language": language})
    session.add(event)
    await session.flush()
    return event


async def scratch_language_used(session: AsyncSession, interview_id: int) -> str | None:
    """The language the scratch pad was last open in (None: never opened)."""
    events = await session.scalars(
        select(InterviewEvent)
        .where(InterviewEvent.interview_id == interview_id, InterviewEvent.kind == "scratch")
        .order_by(InterviewEvent.id.desc())
    )
    for event in events:
        if event.data.get("language"):
            return str(event.data["language"])
    return None


async def notes_of(session: AsyncSession, interview_id: int) -> Note | None:
    return await session.get(Note, interview_id)


async def save_notes(
    session: AsyncSession, interview: Interview, text: str, now: datetime | None = None
) -> Note:
    """Store the notes (the whole text; the latest save wins)."""
    if len(text) > MAX_NOTES_CHARS:
        raise InvalidInput(
            "notes", "Notes are limited to %(count)s characters.", count=f"{MAX_NOTES_CHARS:,}"
        )
    note = await session.get(Note, interview.id)
    if note is None:
        note = Note(interview_id=interview.id)
        session.add(note)
    note.text = text
    note.updated_at = now or utcnow()
    await session.flush()
    return note


async def question_spec(session: AsyncSession, interview_id: int, position: int) -> Question | None:
    """The bank question at `position` of this interview."""
    return await session.scalar(
        select(Question)
        .join(InterviewQuestion, InterviewQuestion.question_id == Question.id)
        .where(
            InterviewQuestion.interview_id == interview_id, InterviewQuestion.position == position
        )
    )


async def answering_since(session: AsyncSession, interview_id: int) -> tuple[datetime, int] | None:
    """The question the candidate is answering now and when it appeared (None outside the
    technical part): where a node that starts receiving the candidate's audio picks up."""
    interview = await session.get(Interview, interview_id)
    if interview is None or interview.state != InterviewState.TECHNICAL:
        return None
    event = await session.scalar(
        select(InterviewEvent)
        .where(InterviewEvent.interview_id == interview_id, InterviewEvent.kind == "question")
        .order_by(InterviewEvent.at.desc(), InterviewEvent.id.desc())
        .limit(1)
    )
    position = interview.current_question
    if event is None or position is None or event.data.get("position") != position:
        return None
    return event.at, position


async def mark_answer_pending(
    session: AsyncSession,
    interview_id: int,
    position: int,
    started_at: datetime | None,
    ended_at: datetime | None,
) -> None:
    """The recruiter moved on: the answer exists, its transcript is on the way (an empty
    `engine` marks it pending until `save_answer` fills it). An answer already stored stays."""
    exists = await session.scalar(
        select(Answer.id).where(Answer.interview_id == interview_id, Answer.position == position)
    )
    if exists is None:
        await save_answer(session, interview_id, position, "", [], started_at, ended_at, "")


async def save_answer(
    session: AsyncSession,
    interview_id: int,
    position: int,
    text: str,
    segments: list[dict[str, Any]],
    started_at: datetime | None,
    ended_at: datetime | None,
    engine: str,
) -> Answer:
    """Store the transcript of one question's answer, or add to it: a question asked again
    (the recruiter went back) keeps what was said the first time, with the new segments in
    time order. A segment already stored (the same job delivered twice) is not added again."""
    answer = await session.scalar(
        select(Answer)
        .where(Answer.interview_id == interview_id, Answer.position == position)
        .with_for_update()  # two jobs for one question: one after the other
    )
    if answer is None:
        answer = Answer(interview_id=interview_id, position=position, segments=[], text="")
        session.add(answer)
    merged = {round(float(seg["start"]), 2): seg for seg in answer.segments or []}
    for seg in segments:
        merged.setdefault(round(float(seg["start"]), 2), seg)
    ordered = [merged[start] for start in sorted(merged)]
    answer.segments = ordered
    answer.text = (
        " ".join(seg["text"] for seg in ordered).strip() if ordered else text or answer.text
    )
    answer.started_at = _earliest(answer.started_at, started_at)
    answer.ended_at = _latest(answer.ended_at, ended_at)
    answer.engine = engine or answer.engine  # a pending mark does not undo a stored answer
    answer.updated_at = utcnow()
    await session.flush()
    return answer


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


async def save_score(
    session: AsyncSession,
    interview_id: int,
    position: int,
    score: float,
    rationale: str,
    covered: list[str],
    missing: list[str],
    follow_up: str,
    scorer: str,
    note: str,
    answer_text: str | None = None,
    confidence: float = 1.0,
    doubt: str = "",
    misconceptions: list[str] | None = None,
) -> Score | None:
    """Insert or replace the AI score of one answer (a recruiter's override is kept). With
    `answer_text`, only while the stored answer still reads so: a score of an older version
    of the answer does not replace the newer one's."""
    if answer_text is not None:
        stored = await session.scalar(
            select(Answer.text).where(
                Answer.interview_id == interview_id, Answer.position == position
            )
        )
        if stored is not None and stored != answer_text:
            return None
    row = await session.scalar(
        select(Score).where(Score.interview_id == interview_id, Score.position == position)
    )
    if row is None:
        row = Score(interview_id=interview_id, position=position)
        session.add(row)
    row.score, row.rationale, row.covered, row.missing = score, rationale, covered, missing
    row.follow_up, row.scorer, row.note, row.created_at = follow_up, scorer, note, utcnow()
    row.confidence, row.doubt, row.misconceptions = confidence, doubt, list(misconceptions or [])
    await session.flush()
    return row


async def answers_and_scores(
    session: AsyncSession, interview_id: int
) -> tuple[dict[int, Answer], dict[int, Score]]:
    answers = await session.scalars(select(Answer).where(Answer.interview_id == interview_id))
    scores = await session.scalars(select(Score).where(Score.interview_id == interview_id))
    return {a.position: a for a in answers}, {s.position: s for s in scores}
