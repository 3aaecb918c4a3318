"""Sign in, register by email (password-setup link), set the password, sign out, and the
account page with the recruiter's sessions ("Sign out everywhere")."""

from __future__ import annotations

import math
import unicodedata
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from rooms import accounts, sessions
from rooms.errors import InvalidInput, SetupLinkError, WrongCredentials
from rooms.models import Recruiter
from web.forms import read_form, render_form
from web.i18n import N_, _, format_datetime, message_of, ngettext
from web.keys import HUB, LIMITER, MAILER, SESSIONS, SETTINGS
from web.mail import password_setup_email
from web.security import (
    client_ip,
    limit_key,
    require_recruiter,
    sign_in,
    sign_in_token,
    sign_out,
)

routes = web.RouteTableDef()
SIGNIN_WINDOW_S = 15 * 60
MAX_NEXT_CHARS = 2000


def safe_next(value: str | None, default: str = "/setup/details") -> str:
    """Only a path of this site: one leading "/", never "//" or a backslash (another host),
    and no control character or space anywhere (a tab dropped from "/<tab>/evil.example" would
    leave "//evil.example")."""
    if (
        value
        and len(value) <= MAX_NEXT_CHARS
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and "\\" not in value
        and not any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value)
    ):
        return value
    return default


def _wait_text(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext("%(num)s minute", "%(num)s minutes", minutes) % {"num": minutes}


def _signin_keys(request: web.Request, email: str) -> list[tuple[str, int]]:
    """The sign-in limits: this account from this address, and this address for any account.
    No account-wide key: nobody elsewhere can lock a recruiter out."""
    address = limit_key(client_ip(request))
    attempts = request.app[SETTINGS].signin_attempts_per_15min
    return [
        (f"signin:{address}:{accounts.email_key(email)}", attempts),
        (f"signin-ip:{address}", attempts * 6),
    ]


async def _count_attempt(request: web.Request, email: str) -> float | None:
    """Count one sign-in attempt before checking it (parallel guesses count too); the seconds
    to wait if one of the limits is reached."""
    limiter = request.app[LIMITER]
    waits = [
        await limiter.hit(key, limit, SIGNIN_WINDOW_S)
        for key, limit in _signin_keys(request, email)
    ]
    blocked = [wait for wait in waits if wait is not None]
    return max(blocked) if blocked else None


async def _attempt_succeeded(request: web.Request, email: str) -> None:
    """Only failures add up: a success clears the account's count and takes back its own."""
    limiter = request.app[LIMITER]
    (account_key, _limit), (address_key, _limit) = _signin_keys(request, email)
    await limiter.reset(account_key)
    await limiter.undo(address_key)


SIGNED_OUT = {
    "everywhere": N_("You are signed out everywhere: every browser has to sign in again."),
    "yes": N_("You are signed out."),
}


@routes.get("/signin", name="signin")
async def signin_form(request: web.Request) -> web.Response:
    notice = SIGNED_OUT.get(request.query.get("signed_out", ""), "")
    notice = _(notice) if notice else ""
    return render_form(
        request, "signin.html", {"next": safe_next(request.query.get("next"))}, notice=notice
    )


@routes.post("/signin")
async def signin(request: web.Request) -> web.Response:
    form = await read_form(request)
    values = {"email": form.get("email", ""), "next": safe_next(form.get("next"))}
    wait = await _count_attempt(request, values["email"])
    if wait is not None:
        return render_form(
            request,
            "signin.html",
            values,
            {
                "form": _("Too many sign-in attempts. Try again in %(wait)s.")
                % {"wait": _wait_text(wait)}
            },
            status=429,
        )
    async with request.app[SESSIONS].begin() as session:
        try:
            recruiter = await accounts.authenticate(
                session, form.get("email", ""), form.get("password", "")
            )
        except WrongCredentials as exc:
            return render_form(request, "signin.html", values, {"form": _(str(exc))}, status=401)
    await _attempt_succeeded(request, values["email"])
    await sign_in(request, recruiter.id)
    raise web.HTTPSeeOther(values["next"])


@routes.get("/register", name="register")
async def register_form(request: web.Request) -> web.Response:
    return render_form(request, "register.html", {"email": request.query.get("email", "")})


@routes.post("/register")
async def register(request: web.Request) -> web.Response:
    """Send a password-setup link; the same answer whether or not the account exists."""
    form = await read_form(request)
    values = {"email": form.get("email", "")}
    try:
        email = accounts.normalize_email(values["email"])
    except InvalidInput as exc:
        return render_form(request, "register.html", values, {"email": message_of(exc)})
    settings = request.app[SETTINGS]
    limiter = request.app[LIMITER]
    for key, limit in (
        (f"setup:{email}", settings.setup_requests_per_hour),
        (f"setup-ip:{limit_key(client_ip(request))}", settings.setup_requests_per_hour * 10),
    ):
        wait = await limiter.hit(key, limit, 3600)
        if wait is not None:
            return render_form(
                request,
                "register.html",
                values,
                {
                    "form": _("Too many requests for a link. Try again in %(wait)s.")
                    % {"wait": _wait_text(wait)}
                },
                status=429,
            )
    async with request.app[SESSIONS].begin() as session:
        _row, token = await accounts.issue_setup_link(session, email)
    link = f"{settings.public_url}/setup-password/{token}"
    await request.app[MAILER].send(password_setup_email(settings.mail_from, email, link))
    raise web.HTTPSeeOther(f"/register/sent?email={quote(email)}")


@routes.get("/register/sent", name="register_sent")
async def register_sent(request: web.Request) -> web.Response:
    return render_form(
        request, "register_sent.html", {"email": request.query.get("email", "")[:320]}
    )


@routes.get("/setup-password/{token}", name="setup_password")
async def setup_password_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    async with request.app[SESSIONS]() as session:
        try:
            link = await accounts.check_setup_link(session, token)
        except SetupLinkError as exc:
            return render_form(
                request, "setup_link_error.html", {}, message=_(str(exc)), status=410
            )
        recruiter = await session.get(Recruiter, link.recruiter_id)
    return render_form(
        request, "set_password.html", {"email": recruiter.email if recruiter else ""}
    )


@routes.post("/setup-password/{token}")
async def setup_password(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    form = await read_form(request)
    password, repeat = form.get("password", ""), form.get("password_repeat", "")
    async with request.app[SESSIONS].begin() as session:
        try:
            link = await accounts.check_setup_link(session, token)
            recruiter = await session.get(Recruiter, link.recruiter_id)
            email = recruiter.email if recruiter else ""
            if password != repeat:
                return render_form(
                    request,
                    "set_password.html",
                    {"email": email},
                    {"password_repeat": _("The two passwords do not match.")},
                )
            try:
                recruiter = await accounts.use_setup_link(session, token, password)
            except InvalidInput as exc:
                return render_form(
                    request, "set_password.html", {"email": email}, {"password": message_of(exc)}
                )
        except SetupLinkError as exc:
            return render_form(
                request, "setup_link_error.html", {}, message=_(str(exc)), status=410
            )
    await sign_in(request, recruiter.id)
    session_data = await get_session(request)
    target = "/setup/details" if session_data.get("setup", {}).get("specialization") else "/start"
    raise web.HTTPSeeOther(target)


@routes.post("/signout", name="signout")
async def signout(request: web.Request) -> web.Response:
    """End this browser's session in the store: a copy of its cookie opens nothing."""
    await sign_out(request)
    raise web.HTTPSeeOther("/", headers={"Clear-Site-Data": '"cache", "storage"'})


def _device(user_agent: str) -> str:
    """A short name for a browser, e.g. "Firefox on Linux", from its User-Agent."""
    browsers = (
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    )
    systems = (
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    )
    browser = next((name for mark, name in browsers if mark in user_agent), "")
    system = next((name for mark, name in systems if mark in user_agent), "")
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or (user_agent[:60] if user_agent else _("Unknown browser"))


async def _account_page(
    request: web.Request, recruiter_id: int, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    token = await sign_in_token(request) or ""
    async with request.app[SESSIONS]() as db:
        recruiter = await db.get(Recruiter, recruiter_id)
        rows = await sessions.of_recruiter(db, recruiter_id)
    listed: list[dict[str, Any]] = [
        {
            "id": row.id,
            "device": _device(row.user_agent),
            "address": row.ip_address,
            "signed_in": f"{format_datetime(row.created_at)} UTC",
            "last_used": f"{format_datetime(row.last_used_at)} UTC",
            "current": sessions.is_token_of(row, token),
        }
        for row in rows
    ]
    flash = (await get_session(request)).pop("flash", None)
    return aiohttp_jinja2.render_template(
        "account.html",
        request,
        {
            "email": recruiter.email if recruiter else "",
            "sessions": listed,
            "errors": errors or {},
            "flash": flash,
        },
        status=status if not errors else max(status, 400),
    )


@routes.get("/account", name="account")
async def account(request: web.Request) -> web.Response:
    """The recruiter's account: where they are signed in, and when each was last used."""
    return await _account_page(request, await require_recruiter(request))


@routes.post("/account/sessions", name="end_sessions")
async def end_sessions(request: web.Request) -> web.Response:
    """Sign out one session or all of them ("Sign out everywhere"), after the password again."""
    rid = await require_recruiter(request)
    form = await read_form(request)
    which = form.get("end", "")
    async with request.app[SESSIONS]() as db:
        recruiter = await db.get(Recruiter, rid)
    email = recruiter.email if recruiter else ""
    wait = await _count_attempt(request, email)
    if wait is not None:
        message = _("Too many sign-in attempts. Try again in %(wait)s.") % {
            "wait": _wait_text(wait)
        }
        return await _account_page(request, rid, {"password": message}, status=429)
    async with request.app[SESSIONS].begin() as db:
        try:
            await accounts.authenticate(db, email, form.get("password", ""))
        except WrongCredentials:
            message = _("Enter your password to sign out sessions.")
            return await _account_page(request, rid, {"password": message}, status=401)
    await _attempt_succeeded(request, email)
    if which == "all":
        async with request.app[SESSIONS].begin() as db:
            await sessions.end_all(db, rid)
        await sign_out(request)
        await request.app[HUB].signed_out(rid)
        raise web.HTTPSeeOther(
            "/signin?signed_out=everywhere", headers={"Clear-Site-Data": '"cache", "storage"'}
        )
    if not which.isascii() or not which.isdigit() or len(which) > 10:
        return await _account_page(request, rid, {"form": _("Choose a session to sign out.")}, 422)
    current = await sign_in_token(request) or ""
    async with request.app[SESSIONS].begin() as db:
        mine = {row.id: row for row in await sessions.of_recruiter(db, rid)}
        row = mine.get(int(which))
        is_current = row is not None and sessions.is_token_of(row, current)
        if row is not None:
            await sessions.end_by_id(db, rid, row.id)
    if is_current:
        await sign_out(request)
        raise web.HTTPSeeOther("/signin?signed_out=yes")
    (await get_session(request))["flash"] = (
        _("That session is signed out.")
        if row is not None
        else _("That session had already ended.")
    )
    raise web.HTTPSeeOther("/account")
