"""CSRF tokens, the signed-in recruiter, client addresses, and ids in URLs.

A browser's own session (aiohttp_session: an encrypted cookie on one node, Redis with several)
holds its CSRF token and the setup draft. Being signed in is a row in the database
(rooms.sessions) named by a random token in that session: deleting the row signs the browser
out on every node, whatever copies of its cookie exist.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from rooms import sessions
from web.forms import read_post
from web.i18n import _
from web.keys import SESSIONS, SETTINGS

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_KEY = "signin"
"""In the browser's session: the token of its row in recruiter_sessions."""
MAX_ID = 2**31 - 1
"""Ids are 32-bit integers in PostgreSQL; a larger one in a URL is a plain 404."""
_ID = re.compile(r"[0-9]{1,10}")
_RECRUITER = "p2pi.recruiter"
_CLIENT = "p2pi.client"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
            form = await read_post(request)
            sent = str(form.get(CSRF_FIELD, ""))
        if not expected or not sent or not hmac.compare_digest(str(expected), sent):
            raise web.HTTPForbidden(
                text=_(
                    "This form has expired or did not come from this site. "
                    "Go back, reload the page and try again."
                )
            )
    return await handler(request)


async def sign_in_token(request: web.Request) -> str | None:
    """The token of this browser's sign-in, if it holds one (live or not)."""
    token = (await get_session(request)).get(SIGN_IN_KEY)
    return token if isinstance(token, str) else None


async def recruiter_of(app: web.Application, token: str) -> int | None:
    """The recruiter whose live session this token is, or None (ended, expired, unknown)."""
    async with app[SESSIONS].begin() as db:
        row = await sessions.find(db, token)
        return row.recruiter_id if row else None


async def recruiter_id(request: web.Request) -> int | None:
    """The signed-in recruiter, checked against the session store once per request."""
    if _RECRUITER in request:
        return request[_RECRUITER]  # type: ignore[no-any-return]
    token = await sign_in_token(request)
    found: int | None = None
    if token is not None:
        found = await recruiter_of(request.app, token)
        if found is None:
            (await get_session(request)).pop(SIGN_IN_KEY, None)  # ended: forget it
    request[_RECRUITER] = found
    return found


async def sign_in(request: web.Request, recruiter: int) -> Session:
    """Start a signed-in session; a fresh session id defeats session fixation, and a sign-in
    this browser already had ends."""
    session = await get_session(request)
    old = session.get(SIGN_IN_KEY)
    keep = {k: session[k] for k in ("setup",) if k in session}
    async with request.app[SESSIONS].begin() as db:
        if isinstance(old, str):
            await sessions.end(db, old)
        token = await sessions.start(
            db, recruiter, request.headers.get("User-Agent", ""), client_ip(request)
        )
    session = await new_session(request)
    session.update(keep)
    session[SIGN_IN_KEY] = token
    session["csrf"] = secrets.token_urlsafe(32)
    request[_RECRUITER] = recruiter
    return session


async def sign_out(request: web.Request) -> None:
    """End this browser's sign-in in the store and forget its session."""
    token = await sign_in_token(request)
    if token is not None:
        async with request.app[SESSIONS].begin() as db:
            await sessions.end(db, token)
    (await get_session(request)).invalidate()
    request[_RECRUITER] = None


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def _address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(request: web.Request) -> str:
    """The client's address: the TCP peer, or, when that peer is a trusted proxy, the first
    address of X-Forwarded-For from the right that is not one (TRUSTED_PROXIES)."""
    if _CLIENT in request:
        return request[_CLIENT]  # type: ignore[no-any-return]
    peer = request.remote or ""
    trusted = _networks(request.app[SETTINGS].trusted_proxies)
    current = _address(peer)
    result = str(current) if current is not None else peer
    if current is not None and trusted and any(current in n for n in trusted):
        hops = [
            hop
            for value in request.headers.getall("X-Forwarded-For", ())
            for hop in value.split(",")
        ]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # garbage a trusted proxy passed on: the proxy is the last address known
            result = str(address)
            if not any(address in n for n in trusted):
                break
    request[_CLIENT] = result
    return result


def limit_key(address: str) -> str:
    """What rate limits count by: the address, or its /64 for IPv6 (one subscriber's block)."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else address[:64]


async def require_recruiter(request: web.Request) -> int:
    """The signed-in recruiter's id; pages send others to sign in, API calls get 401."""
    rid = await recruiter_id(request)
    if rid is None:
        if request.path.startswith("/api/"):
            raise web.HTTPUnauthorized(text=_("Sign in again to continue."))
        raise web.HTTPSeeOther(f"/signin?next={quote(request.path, safe='/')}")
    return rid


def path_id(request: web.Request, key: str = "id") -> int:
    """A numeric id from the URL: ASCII digits only ("²" and "١" are not ids), 32-bit."""
    raw = request.match_info[key]
    if not _ID.fullmatch(raw) or int(raw) > MAX_ID:
        raise web.HTTPNotFound()
    return int(raw)
