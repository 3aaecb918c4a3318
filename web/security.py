"""CSRF tokens, the signed-in recruiter, and client addresses."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def csrf_token(request: web.Request) -> str:
    """This browser session's CSRF token, created on first use."""
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


@web.middleware
async def csrf_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse any state-changing request without this session's token (form field or header)."""
    if request.method not in SAFE_METHODS:
        session = await get_session(request)
        expected = session.get("csrf")
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            sent = str(form.get(CSRF_FIELD, ""))
        if not expected or not sent or not hmac.compare_digest(str(expected), sent):
            raise web.HTTPForbidden(
                text="This form has expired or did not come from this site. "
                "Go back, reload the page and try again."
            )
    return await handler(request)


async def recruiter_id(request: web.Request) -> int | None:
    session = await get_session(request)
    value = session.get("recruiter_id")
    return int(value) if value is not None else None


async def sign_in(request: web.Request, recruiter: int) -> Session:
    """Start a signed-in session; a fresh session id defeats session fixation."""
    session = await get_session(request)
    keep = {k: session[k] for k in ("setup",) if k in session}
    session = await new_session(request)
    session.update(keep)
    session["recruiter_id"] = recruiter
    session["csrf"] = secrets.token_urlsafe(32)
    return session


def client_ip(request: web.Request) -> str:
    return request.remote or ""


async def require_recruiter(request: web.Request) -> int:
    """The signed-in recruiter's id; pages send others to sign in, API calls get 401."""
    rid = await recruiter_id(request)
    if rid is None:
        if request.path.startswith("/api/"):
            raise web.HTTPUnauthorized(text="Sign in again to continue.")
        raise web.HTTPSeeOther(f"/signin?next={request.path}")
    return rid


def path_id(request: web.Request, key: str = "id") -> int:
    """A numeric id from the URL; anything else is a plain 404."""
    raw = request.match_info[key]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)
