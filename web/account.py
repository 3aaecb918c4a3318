"""Sign in, register by email (password-setup link), set the password, sign out."""

from __future__ import annotations

import math
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import get_session

from rooms import accounts
from rooms.errors import InvalidInput, SetupLinkError, WrongCredentials
from rooms.models import Recruiter
from web.forms import read_form, render_form
from web.keys import LIMITER, MAILER, SESSIONS, SETTINGS
from web.mail import password_setup_email
from web.security import client_ip, sign_in

routes = web.RouteTableDef()


def safe_next(value: str | None, default: str = "/setup/details") -> str:
    """Only same-site paths: never redirect a user to another host after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _wait_text(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@routes.get("/signin", name="signin")
async def signin_form(request: web.Request) -> web.Response:
    return render_form(request, "signin.html", {"next": safe_next(request.query.get("next"))})


@routes.post("/signin")
async def signin(request: web.Request) -> web.Response:
    form = await read_form(request)
    values = {"email": form.get("email", ""), "next": safe_next(form.get("next"))}
    settings = request.app[SETTINGS]
    limiter = request.app[LIMITER]
    email_key = values["email"].strip().lower()[:320]
    for key, limit in (
        (f"signin:{client_ip(request)}:{email_key}", settings.signin_attempts_per_15min),
        (f"signin-ip:{client_ip(request)}", settings.signin_attempts_per_15min * 6),
    ):
        wait = await limiter.hit(key, limit, 15 * 60)
        if wait is not None:
            return render_form(
                request,
                "signin.html",
                values,
                {"form": f"Too many sign-in attempts. Try again in {_wait_text(wait)}."},
                status=429,
            )
    async with request.app[SESSIONS].begin() as session:
        try:
            recruiter = await accounts.authenticate(
                session, form.get("email", ""), form.get("password", "")
            )
        except WrongCredentials as exc:
            return render_form(request, "signin.html", values, {"form": str(exc)}, status=401)
    await limiter.reset(f"signin:{client_ip(request)}:{email_key}")
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
        return render_form(request, "register.html", values, {"email": exc.message})
    settings = request.app[SETTINGS]
    limiter = request.app[LIMITER]
    for key, limit in (
        (f"setup:{email}", settings.setup_requests_per_hour),
        (f"setup-ip:{client_ip(request)}", settings.setup_requests_per_hour * 10),
    ):
        wait = await limiter.hit(key, limit, 3600)
        if wait is not None:
            return render_form(
                request,
                "register.html",
                values,
                {"form": f"Too many requests for a link. Try again in {_wait_text(wait)}."},
                status=429,
            )
    async with request.app[SESSIONS].begin() as session:
        _, token = await accounts.issue_setup_link(session, email)
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
            return render_form(request, "setup_link_error.html", {}, message=str(exc), status=410)
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
                    {"password_repeat": "The two passwords do not match."},
                )
            try:
                recruiter = await accounts.use_setup_link(session, token, password)
            except InvalidInput as exc:
                return render_form(
                    request, "set_password.html", {"email": email}, {"password": exc.message}
                )
        except SetupLinkError as exc:
            return render_form(request, "setup_link_error.html", {}, message=str(exc), status=410)
    await sign_in(request, recruiter.id)
    session_data = await get_session(request)
    target = "/setup/details" if session_data.get("setup", {}).get("specialization") else "/start"
    raise web.HTTPSeeOther(target)


@routes.post("/signout", name="signout")
async def signout(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/")
