"""Conducting the interview: JSON endpoints behind the recruiter's room and the candidate's page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.events import StageShown
from rooms import conduct
from rooms.errors import InvalidInput, NotFound
from rooms.interviews import get_by_candidate_token, get_for_recruiter
from rooms.models import Interview, InterviewEvent, Topic
from rooms.results import score_facts
from rooms.states import IllegalTransition, InterviewState
from web.errors import json_error
from web.forms import read_json_object, read_post
from web.i18n import N_, _, message_of, transition_text
from web.keys import ANSWERS, MOVES, SESSIONS
from web.security import path_id, recruiter_id

routes = web.RouteTableDef()


async def recruiter_view(session: AsyncSession, interview: Interview) -> dict[str, Any]:
    """Everything the recruiter's stage panel shows, expected answers included."""
    topics = await session.scalars(
        select(Topic)
        .where(Topic.specialization_id == interview.specialization_id)
        .order_by(Topic.position)
    )
    checked = await conduct.checked_topics(session, interview.id)
    note = await conduct.notes_of(session, interview.id)
    question = conduct.current_question(interview)
    answers, scores = await conduct.answers_and_scores(session, interview.id)
    results: dict[int, dict[str, Any]] = {}
    for position in sorted(set(answers) | set(scores)):
        entry: dict[str, Any] = {"text": answers[position].text if position in answers else ""}
        if position in scores:
            score = scores[position]
            entry.update(score=score.score, **score_facts(score))
        results[position] = entry
    return {
        "state": interview.state,
        "topics": [
            {"id": t.id, "title": t.title, "prompt": t.prompt, "checked": t.id in checked}
            for t in topics
        ],
        "question": question.for_recruiter() if question else None,
        "scratch": interview.scratch_language if in_call(interview) else None,
        "question_count": len(interview.questions),
        "notes": note.text if note else "",
        "notes_saved_at": note.updated_at.isoformat() if note else None,
        "results_url": f"/interviews/{interview.id}/results",
        "answers": results,
    }


def in_call(interview: Interview) -> bool:
    return interview.state in {
        InterviewState.PLAN.value,
        InterviewState.TECHNICAL.value,
        InterviewState.FINISHING.value,
    }


def candidate_view(interview: Interview) -> dict[str, Any]:
    """What the candidate's page shows: the stage and the question text, nothing more."""
    question = conduct.current_question(interview)
    return {
        "state": interview.state,
        "question": question.for_candidate() if question else None,
        "scratch": interview.scratch_language if in_call(interview) else None,
    }


NO_WORKER = N_(
    "The AI assistant is paused: no transcription worker is running. Answers are recorded and "
    "wait in the queue; they are transcribed and scored as soon as a worker starts. "
    "Tell your administrator."
)
QUEUE_DOWN = N_(
    "The AI assistant cannot be reached (its job queue is down). Answers are still recorded; "
    "tell your administrator."
)


async def assistant_state(request: web.Request) -> dict[str, Any]:
    """Whether live transcription and scoring can run now, with a message for the recruiter
    when they cannot (with Redis, nothing runs without a worker)."""
    try:
        status = await request.app[ANSWERS].jobs.status()
    except Exception:
        return {"ok": False, "message": _(QUEUE_DOWN)}
    if status.get("queue") == "redis" and status.get("workers") == 0:
        return {"ok": False, "message": _(NO_WORKER)}
    return {"ok": True, "message": ""}


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request)


Action = Callable[[AsyncSession, Interview, dict[str, Any]], Awaitable[InterviewEvent | None]]


async def _act(request: web.Request, action: Action, announce: bool = True) -> web.Response:
    """Load the recruiter's own interview, apply one action, answer with the new view."""
    rid = await recruiter_id(request)
    if rid is None:
        raise web.HTTPUnauthorized(text=_("Sign in again to continue."))
    body = await _body(request) if request.can_read_body else {}
    async with request.app[SESSIONS].begin() as session:
        await get_for_recruiter(session, rid, path_id(request))
        interview = await conduct.load(session, path_id(request))
        try:
            event = await action(session, interview, body)
        except InvalidInput as exc:
            return json_error(422, message_of(exc), exc.field)
        except IllegalTransition as exc:
            return json_error(409, transition_text(exc))
        interview = await conduct.load(session, interview.id)
        view = await recruiter_view(session, interview)
        public = candidate_view(interview)
    shown = StageShown(public["state"], public["question"], public["scratch"])
    if event is not None and event.kind == "scratch":
        await request.app[MOVES].shown(interview.id, shown)
    elif event is not None:
        # The live transcript starts the next answer exactly when the question changed, on
        # whichever node receives the candidate's audio.
        position = event.data.get("position") if event.kind == "question" else None
        await request.app[MOVES].moved(
            interview.id, event.at, position, shown if announce else None
        )
    if view["state"] in {"technical", "finishing"}:
        view["assistant"] = await assistant_state(request)
    return web.json_response(view)


@routes.get("/api/interviews/{id:[0-9]+}/stage")
async def stage(request: web.Request) -> web.Response:
    async def nothing(session: AsyncSession, interview: Interview, body: dict[str, Any]) -> None:
        return None

    return await _act(request, nothing, announce=False)


@routes.post("/api/interviews/{id:[0-9]+}/topics/{topic:[0-9]+}")
async def check_topic(request: web.Request) -> web.Response:
    topic_id = path_id(request, "topic")

    async def action(session: AsyncSession, interview: Interview, body: dict[str, Any]) -> None:
        checked = body.get("checked")
        if not isinstance(checked, bool):
            raise InvalidInput("checked", _("Say checked: true or false."))
        await conduct.set_topic(session, interview, topic_id, checked)
        return None

    return await _act(request, action, announce=False)


@routes.post("/api/interviews/{id:[0-9]+}/technical")
async def start_technical(request: web.Request) -> web.Response:
    async def action(
        session: AsyncSession, interview: Interview, body: dict[str, Any]
    ) -> InterviewEvent:
        return await conduct.start_technical(session, interview)

    return await _act(request, action)


@routes.post("/api/interviews/{id:[0-9]+}/question")
async def show_question(request: web.Request) -> web.Response:
    async def action(
        session: AsyncSession, interview: Interview, body: dict[str, Any]
    ) -> InterviewEvent:
        position = body.get("position")
        if not isinstance(position, int) or isinstance(position, bool):
            raise InvalidInput("position", _("Say which question: position is a number."))
        return await conduct.show_question(session, interview, position)

    return await _act(request, action)


@routes.post("/api/interviews/{id:[0-9]+}/finish")
async def finish(request: web.Request) -> web.Response:
    async def action(
        session: AsyncSession, interview: Interview, body: dict[str, Any]
    ) -> InterviewEvent:
        return await conduct.finish_technical(session, interview)

    return await _act(request, action)


@routes.post("/api/interviews/{id:[0-9]+}/scratch")
async def scratch(request: web.Request) -> web.Response:
    """Open the scratch pad on both pages (`{"language": "python"}`), or close it (`null`)."""

    async def action(
        session: AsyncSession, interview: Interview, body: dict[str, Any]
    ) -> InterviewEvent | None:
        if "language" not in body:
            raise InvalidInput("language", _("Say the language, or null to close the pad."))
        language = body["language"]
        if language is not None and not isinstance(language, str):
            raise InvalidInput("language", _("The scratch pad runs Python or JavaScript."))
        return await conduct.set_scratch(session, interview, language)

    return await _act(request, action)


@routes.post("/api/interviews/{id:[0-9]+}/notes")
async def save_notes(request: web.Request) -> web.Response:
    """Autosave: JSON from the page, or a form from navigator.sendBeacon as the page closes."""
    rid = await recruiter_id(request)
    if rid is None:
        raise web.HTTPUnauthorized(text=_("Sign in again to continue."))
    if request.content_type == "application/json":
        text = (await _body(request)).get("text")
    else:
        text = (await read_post(request)).get("text")
    if not isinstance(text, str):
        return json_error(422, _("Send the notes as text."))
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        try:
            note = await conduct.save_notes(session, interview, text)
        except InvalidInput as exc:
            return json_error(422, message_of(exc), exc.field)
    return web.json_response({"saved_at": note.updated_at.isoformat(), "length": len(note.text)})


@routes.get("/i/{token}/stage")
async def candidate_stage(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        try:
            found = await get_by_candidate_token(session, request.match_info["token"])
        except NotFound:
            return json_error(404, _("This interview link is not valid."))
        interview = await conduct.load(session, found.id)
    view = candidate_view(interview)
    if view["state"] == InterviewState.COMPLETED.value:
        view["question"] = view["scratch"] = None
    return web.json_response(view)
