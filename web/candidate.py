"""The candidate's side: the page behind the unique link, the equipment check and Join."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from rooms.consents import LABELS, ConsentKind, Party
from rooms.errors import InvalidInput, NotFound
from rooms.interviews import candidate_joins, candidate_ready_to_join, get_by_candidate_token
from rooms.states import InterviewState, is_live
from web import i18n
from web.errors import json_error
from web.forms import read_json_object
from web.i18n import _, message_of
from web.invitations import local_time_text
from web.keys import SESSIONS, SETTINGS
from web.security import client_ip

routes = web.RouteTableDef()


def _link_error(request: web.Request, title: str, message: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template(
        "candidate_error.html", request, {"title": title, "message": message}, status=status
    )


@routes.get("/i/{token}", name="candidate")
async def candidate_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        try:
            interview = await get_by_candidate_token(session, request.match_info["token"])
        except NotFound:
            return _link_error(
                request,
                _("This interview link is not valid"),
                _(
                    "Check that you copied the whole link from the invitation, or ask the "
                    "recruiter to send it again."
                ),
                404,
            )
    # The candidate reads the interview's language, unless they chose another with the switcher.
    i18n.activate(i18n.for_request(request, interview.language))
    if not is_live(InterviewState(interview.state)):
        return _link_error(
            request,
            _("This interview has ended"),
            _("Thank you for your time. The recruiter will contact you about the next steps."),
            410,
        )
    response = aiohttp_jinja2.render_template(
        "candidate.html",
        request,
        {
            "interview": interview,
            "token": interview.candidate_token,
            "consents": [(k.value, label) for k, label in LABELS[Party.CANDIDATE].items()],
            "already_consented": candidate_ready_to_join(interview),
            "scheduled_text": local_time_text(interview) if interview.scheduled_at else "",
        },
    )
    # The link is a secret: keep it out of Referer headers and caches.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/i/{token}/join", name="candidate_join")
async def candidate_join(request: web.Request) -> web.Response:
    """Store the candidate's consents; the page then tells the hub it is ready."""
    body = await read_json_object(request, _("Send the consents as a JSON object."))
    raw = body.get("consents")
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        return json_error(400, _("consents must be a list of names."))
    given = {ConsentKind(k) for k in raw if k in ConsentKind._value2member_map_}
    async with request.app[SESSIONS].begin() as session:
        try:
            interview = await get_by_candidate_token(session, request.match_info["token"])
            await candidate_joins(
                session,
                interview,
                given,
                request.app[SETTINGS].privacy_policy_version,
                client_ip(request),
            )
        except NotFound:
            return web.json_response(
                {"error": _("This interview link is not valid or has ended.")}, status=404
            )
        except InvalidInput as exc:
            return json_error(422, message_of(exc), exc.field)
    return web.json_response({"ok": True})
