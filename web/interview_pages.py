"""The recruiter's interviews: the list, the waiting room, and starting the interview."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy import select

from bus.events import room_channel
from rooms.interviews import (
    get_for_recruiter,
    list_for_recruiter,
    open_waiting_room,
    overall_scores,
    transition,
)
from rooms.models import Interview, Topic
from rooms.states import IllegalTransition, InterviewState
from signaling.hub import summarize
from web.i18n import _, format_datetime, transition_text
from web.invitations import candidate_link, local_time_text
from web.keys import HUB, MOVES, SESSIONS
from web.security import path_id, require_recruiter

routes = web.RouteTableDef()


@routes.get("/interviews", name="interviews")
async def interview_list(request: web.Request) -> web.Response:
    rid = await require_recruiter(request)
    search = request.query.get("q", "")[:100]
    state = request.query.get("state", "")
    async with request.app[SESSIONS]() as session:
        interviews = await list_for_recruiter(session, rid, search, state)
        scores = await overall_scores(session, [i.id for i in interviews])
    rows = [
        {
            "interview": i,
            "link": candidate_link(request.app, i),
            "when": local_time_text(i)
            if i.scheduled_at
            else f"{format_datetime(i.created_at)} UTC",
            "score": scores.get(i.id),
        }
        for i in interviews
    ]
    states = [s.value for s in InterviewState]
    return aiohttp_jinja2.render_template(
        "interviews.html", request, {"rows": rows, "q": search, "state": state, "states": states}
    )


@routes.get("/interviews/{id:[0-9]+}", name="interview")
async def interview_page(request: web.Request) -> web.Response:
    """The waiting room before the start; the Interview plan after it."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        state = InterviewState(interview.state)
        topics: list[Topic] = []
        if state is not InterviewState.SCHEDULED and state is not InterviewState.WAITING:
            topics = list(
                await session.scalars(
                    select(Topic)
                    .where(Topic.specialization_id == interview.specialization_id)
                    .order_by(Topic.position)
                )
            )
    flash = (await get_session(request)).pop("flash", None)
    peers = await request.app[HUB].presence.peers(room_channel(interview.id))
    context = {
        "interview": interview,
        "state": state.value,
        "link": candidate_link(request.app, interview),
        "scheduled_text": local_time_text(interview) if interview.scheduled_at else "",
        "topics": topics,
        "flash": flash,
        "candidate_ready": summarize(peers)["candidate"]["ready"],
    }
    if state is InterviewState.COMPLETED:
        raise web.HTTPSeeOther(f"/interviews/{interview.id}/results")
    waiting = state in (InterviewState.SCHEDULED, InterviewState.WAITING)
    template = "waiting.html" if waiting else "conduct.html"
    return aiohttp_jinja2.render_template(template, request, context)


@routes.post("/interviews/{id:[0-9]+}/start", name="start_interview")
async def start_interview(request: web.Request) -> web.Response:
    """ "Start interview": only once the candidate has joined; opens the Interview plan."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS].begin() as session:
        interview: Interview = await get_for_recruiter(session, rid, path_id(request))
        await open_waiting_room(session, interview)
        if interview.candidate_joined_at is None:
            raise web.HTTPConflict(
                text=_(
                    "Candidate %(name)s has not joined yet. "
                    "Start the interview once they are ready and waiting."
                )
                % {"name": interview.candidate_name}
            )
        try:
            await transition(session, interview, InterviewState.PLAN)
        except IllegalTransition as exc:
            raise web.HTTPConflict(text=transition_text(exc)) from None
    await request.app[MOVES].started(interview.id)
    raise web.HTTPSeeOther(f"/interviews/{interview.id}")


@routes.post("/interviews/{id:[0-9]+}/end", name="end_interview")
async def end_interview(request: web.Request) -> web.Response:
    """The red phone icon: the interview ends for both sides."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        try:
            ended = await transition(session, interview, InterviewState.COMPLETED)
        except IllegalTransition as exc:
            raise web.HTTPConflict(text=transition_text(exc)) from None
    await request.app[MOVES].ended(interview.id, ended.at)
    return web.json_response(
        {"state": "completed", "results_url": f"/interviews/{interview.id}/results"}
    )
