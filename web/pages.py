"""Pages anyone may see: Welcome, Privacy Policy, health check; and the error pages."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from rooms.errors import NotFound
from web import i18n
from web.errors import json_error
from web.forms import read_form
from web.i18n import _
from web.keys import ANSWERS, SETTINGS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/", name="welcome")
@aiohttp_jinja2.template("welcome.html")
async def welcome(request: web.Request) -> dict[str, object]:
    return {}


@routes.get("/privacy", name="privacy")
@aiohttp_jinja2.template("privacy.html")
async def privacy(request: web.Request) -> dict[str, object]:
    return {"version": request.app[SETTINGS].privacy_policy_version}


@routes.post("/language", name="language")
async def switch_language(request: web.Request) -> web.Response:
    """The language switcher: remember the choice in a cookie and go back to the page."""
    form = await read_form(request)
    code = form.get("language", "")
    if code not in i18n.LANGUAGES:
        raise web.HTTPBadRequest(text=_("Choose one of the languages offered."))
    response = web.HTTPSeeOther(i18n.local_path(form.get("next", "/")))
    response.set_cookie(
        i18n.COOKIE,
        code,
        max_age=i18n.COOKIE_MAX_AGE,
        path="/",
        samesite="Lax",
        httponly=True,
        secure=request.app[SETTINGS].secure_cookies,
    )
    raise response


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness for load balancers, and the speech queue for operators: with Redis, how many
    jobs wait and how many workers are taking them (0 workers: nothing gets transcribed)."""
    try:
        jobs = await request.app[ANSWERS].jobs.status()
    except Exception as exc:  # Redis unreachable: this node cannot do its work
        log.warning("health check: the job queue is unreachable: %s", exc)
        return web.json_response({"ok": False, "jobs": {"error": str(exc)}}, status=503)
    return web.json_response({"ok": True, "jobs": jobs})


_SECRET_IN_PATH = re.compile(r"^/(i|setup-password)/[^/]+")


def loggable_path(path: str) -> str:
    """The path without the secret a candidate or setup link carries, for the log."""
    return _SECRET_IN_PATH.sub(r"/\1/…", path)[:200]


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html", request, {"title": title, "message": message}, status=status
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure becomes a clear page (or JSON for API calls and JSON requests), never a
    stack trace; an unexpected one is one line in the log."""
    wants_json = (
        request.path.startswith("/api/")
        or "application/json" in request.headers.get("Accept", "")
        or request.content_type == "application/json"
    )
    try:
        return await handler(request)
    except NotFound:
        status, title = 404, _("Not found")
        message = _("This page does not exist, or it is not yours.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status
        title = _(exc.reason)
        if status >= 500:
            log.error("%s %s failed: %r", request.method, loggable_path(request.path), exc.text)
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
        message = _(message) if message else ""
        if status == 404:
            message = _("This page does not exist, or it is not yours.")
        if status == 413:
            message = _("That request is too large.")
    except Exception as exc:
        log.error(
            "unhandled error on %s %s: %s: %r at %s",
            request.method,
            loggable_path(request.path),
            type(exc).__name__,
            str(exc)[:200],
            _where(exc),
        )
        status, title = 500, _("Something went wrong")
        message = _(
            "The server could not complete this request. Nothing you entered was lost; try again."
        )
    if wants_json:
        return json_error(status, message or title)
    return error_page(request, status, title, message or title)
