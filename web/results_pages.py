"""Reviewing results: the results page, playback with range requests, overrides, export, delete."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from rooms.errors import InvalidInput, NotFound
from rooms.interviews import get_for_recruiter
from rooms.results import (
    VERDICTS,
    delete_interview,
    interview_result,
    override_score,
    recording_of,
    set_verdict,
)
from web.errors import json_error
from web.forms import read_json, read_post
from web.keys import SESSIONS, STORAGE
from web.report import render_pdf
from web.security import path_id, require_recruiter

routes = web.RouteTableDef()


async def _result(request: web.Request) -> dict[str, Any]:
    rid = await require_recruiter(request)
    async with request.app[SESSIONS]() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        return await interview_result(session, interview)


@routes.get("/interviews/{id:[0-9]+}/results", name="results")
async def results_page(request: web.Request) -> web.Response:
    result = await _result(request)
    return aiohttp_jinja2.render_template(
        "results.html", request, {"r": result, "verdicts": VERDICTS}
    )


@routes.get("/api/interviews/{id:[0-9]+}/result")
async def results_json(request: web.Request) -> web.Response:
    """The whole result as JSON (for the recruiter's own tools)."""
    result = await _result(request)
    response = web.json_response(result)
    if "download" in request.query:
        response.headers["Content-Disposition"] = (
            f'attachment; filename="interview-{result["id"]}.json"'
        )
    return response


@routes.get("/interviews/{id:[0-9]+}/report.pdf")
async def results_pdf(request: web.Request) -> web.Response:
    """The printable report as a PDF download."""
    result = await _result(request)
    pdf = await asyncio.to_thread(render_pdf, result)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="interview-{result["id"]}.pdf"'},
    )


@routes.get("/interviews/{id:[0-9]+}/recordings/{recording:[0-9]+}")
async def recording_file(request: web.Request) -> web.StreamResponse:
    """One recording segment, with HTTP range requests (seeking in the player)."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS]() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        recording = await recording_of(session, interview.id, path_id(request, "recording"))
    try:
        path = request.app[STORAGE].resolve(recording.path)
    except ValueError:
        raise NotFound("recording") from None
    if not path.exists():
        raise NotFound("recording")
    response = web.FileResponse(
        path, headers={"Content-Type": "audio/ogg", "Cache-Control": "private, no-store"}
    )
    return response


@routes.post("/api/interviews/{id:[0-9]+}/scores/{position:[0-9]+}")
async def override(request: web.Request) -> web.Response:
    rid = await require_recruiter(request)
    body = await read_json(request)
    value = body.get("override") if isinstance(body, dict) else "bad"
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return web.json_response(
            {"error": "The score must be a number from 0 to 10, or null."}, status=422
        )
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        try:
            score = await override_score(session, interview.id, path_id(request, "position"), value)
        except InvalidInput as exc:
            return json_error(422, exc.message)
        return web.json_response(
            {"position": score.position, "ai": score.score, "override": score.override}
        )


@routes.post("/interviews/{id:[0-9]+}/verdict")
async def verdict(request: web.Request) -> web.Response:
    """The final verdict form on the results page."""
    rid = await require_recruiter(request)
    form = await read_post(request)
    choice = str(form.get("verdict", ""))[:20] or None
    note = str(form.get("verdict_note", ""))[:6000]
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        try:
            await set_verdict(session, interview, choice, note)
        except InvalidInput as exc:
            raise web.HTTPUnprocessableEntity(text=exc.message) from None
    raise web.HTTPSeeOther(f"/interviews/{interview.id}/results#verdict")


@routes.post("/interviews/{id:[0-9]+}/delete")
async def delete(request: web.Request) -> web.Response:
    """Delete the interview, its recordings and transcripts, for good."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        interview_id = interview.id
        await delete_interview(session, interview)
    request.app[STORAGE].delete_interview(interview_id)
    raise web.HTTPSeeOther("/interviews")
