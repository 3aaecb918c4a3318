"""Reviewing results: the results page, playback with range requests, overrides, export, delete."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from media.storage import BadKey, StorageUnavailable
from rooms.code_documents import replay
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
from web.i18n import _, message_of
from web.keys import SESSIONS, STORAGE
from web.report import render_pdf
from web.security import path_id, require_recruiter

log = logging.getLogger(__name__)
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


@routes.get("/api/interviews/{id:[0-9]+}/code-replay")
async def code_replay(request: web.Request) -> web.Response:
    """The shared code's updates with their times, for the results page's scrubber."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS]() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        return web.json_response(await replay(session, interview.id, interview.started_at))


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
    """One recording segment, with HTTP range requests (seeking in the player), from wherever
    the storage keeps it: this node's disk or the bucket, proxied (any node plays any)."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS]() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        recording = await recording_of(session, interview.id, path_id(request, "recording"))
    storage = request.app[STORAGE]
    try:
        size = await storage.size(recording.path)
    except BadKey:
        raise NotFound("recording") from None
    except StorageUnavailable:
        raise web.HTTPServiceUnavailable(
            text="The recording storage cannot be reached right now; try again shortly."
        ) from None
    if size is None:
        raise NotFound("recording")
    headers = {
        "Content-Type": "audio/ogg",
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
    }
    try:
        wanted = _byte_range(request, size)
    except ValueError:
        raise web.HTTPRequestRangeNotSatisfiable(
            headers={"Content-Range": f"bytes */{size}"}
        ) from None
    start, stop = wanted if wanted is not None else (0, size)
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    response.content_length = stop - start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    try:
        async for chunk in storage.read(recording.path, start, stop - start):
            await response.write(chunk)
    except StorageUnavailable as exc:
        log.warning("recording %s broke off while played: %s", recording.id, exc)
        return response  # the player sees a short answer and asks again
    await response.write_eof()
    return response


def _byte_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as [start, stop); None for the whole file. ValueError
    when it is malformed or lies past the end (416)."""
    if "Range" not in request.headers:
        return None
    wanted = request.http_range  # ValueError when malformed
    start, stop = wanted.start, wanted.stop
    if start is None and stop is None:
        return None
    if start is None:  # aiohttp reads "bytes=-N" as start -N
        raise ValueError("range not understood")
    if start < 0:
        start = max(0, size + start)
        stop = size
    stop = size if stop is None else min(stop, size)
    if start >= size or stop <= start:
        raise ValueError("range past the end")
    return start, stop


@routes.post("/api/interviews/{id:[0-9]+}/scores/{position:[0-9]+}")
async def override(request: web.Request) -> web.Response:
    rid = await require_recruiter(request)
    body = await read_json(request)
    value = body.get("override") if isinstance(body, dict) else "bad"
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return web.json_response(
            {"error": _("The score must be a number from 0 to 10, or null.")}, status=422
        )
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        try:
            score = await override_score(session, interview.id, path_id(request, "position"), value)
        except InvalidInput as exc:
            return json_error(422, message_of(exc))
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
            raise web.HTTPUnprocessableEntity(text=message_of(exc)) from None
    raise web.HTTPSeeOther(f"/interviews/{interview.id}/results#verdict")


@routes.post("/interviews/{id:[0-9]+}/delete")
async def delete(request: web.Request) -> web.Response:
    """Delete the interview, its recordings and transcripts, for good."""
    rid = await require_recruiter(request)
    async with request.app[SESSIONS].begin() as session:
        interview = await get_for_recruiter(session, rid, path_id(request))
        # The files first: if the storage cannot be reached, nothing is deleted and the
        # recruiter can try again (rows gone with files left would be forgotten files).
        try:
            await request.app[STORAGE].delete_interview(interview.id)
        except StorageUnavailable as exc:
            log.error("recordings of interview %s not deleted: %s", interview.id, exc)
            raise web.HTTPServiceUnavailable(
                text="The recording storage cannot be reached right now; nothing was deleted. "
                "Try again shortly."
            ) from None
        await delete_interview(session, interview)
    raise web.HTTPSeeOther("/interviews")
