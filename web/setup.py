"""Meeting setup, steps 1-4 of the guide: specialization, your details, candidate, mode."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from rooms.consents import LABELS, REQUIRED, ConsentKind, Party
from rooms.errors import InvalidInput
from rooms.interviews import (
    DEFAULT_QUESTION_COUNT,
    Person,
    create_interview,
    parse_schedule,
    validate_person,
)
from rooms.models import Question, Recruiter, Specialization, utcnow
from web import i18n
from web.forms import read_form, render_form
from web.i18n import _, message_of
from web.invitations import send_invitation
from web.keys import LIMITER, SESSIONS, SETTINGS
from web.security import client_ip, limit_key, recruiter_id, require_recruiter

routes = web.RouteTableDef()


async def _draft(request: web.Request) -> tuple[Session, dict[str, Any]]:
    session = await get_session(request)
    return session, dict(session.get("setup") or {})


async def _require_step(request: web.Request, *keys: str) -> dict[str, Any]:
    """The setup so far; missing an earlier step sends the user back to it."""
    _session, draft = await _draft(request)
    if "specialization" not in draft:
        raise web.HTTPSeeOther("/start")
    if "interviewer" in keys and "interviewer" not in draft:
        raise web.HTTPSeeOther("/setup/details")
    if "candidate" in keys and "candidate" not in draft:
        raise web.HTTPSeeOther("/setup/candidate")
    return draft


async def _specializations(request: web.Request) -> list[Specialization]:
    async with request.app[SESSIONS]() as session:
        rows = await session.scalars(
            select(Specialization)
            .options(selectinload(Specialization.topics), selectinload(Specialization.questions))
            .order_by(Specialization.position)
        )
        return list(rows)


def specialization_language(specialization_id: str) -> str:
    """The language of a specialization's bank: a bank in another language than English has an
    id that starts with its code (`ru-python-backend`, see rooms/bank/ru/)."""
    code = specialization_id.split("-", 1)[0]
    return code if code in i18n.LANGUAGES and code != i18n.DEFAULT_LANGUAGE else "en"


def _in_language(specializations: list[Specialization], language: str) -> list[Specialization]:
    return [s for s in specializations if specialization_language(s.id) == language]


@routes.get("/start", name="start")
async def choose_specialization(request: web.Request) -> web.Response:
    """Step 1: the interview's language (it selects the question bank) and the specialization."""
    _session, draft = await _draft(request)
    everything = await _specializations(request)
    asked = request.query.get("language", "")
    if asked in i18n.LANGUAGES:
        language = asked
    elif draft.get("language") in i18n.LANGUAGES:
        language = draft["language"]
    else:
        language = i18n.current() if _in_language(everything, i18n.current()) else "en"
    return render_form(
        request,
        "specialization.html",
        {"specialization": draft.get("specialization", "")},
        specializations=_in_language(everything, language),
        interview_language=language,
    )


@routes.post("/start")
async def choose_specialization_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    choice = form.get("specialization", "")
    language = form.get("interview_language", "") or "en"
    if language not in i18n.LANGUAGES:
        language = "en"
    specializations = _in_language(await _specializations(request), language)
    if choice not in {s.id for s in specializations}:
        return render_form(
            request,
            "specialization.html",
            {"specialization": ""},
            {"specialization": _("Choose the interview technology or specialization.")},
            specializations=specializations,
            interview_language=language,
        )
    session, draft = await _draft(request)
    draft["specialization"] = choice
    draft["language"] = language
    session["setup"] = draft
    if await recruiter_id(request) is None:
        raise web.HTTPSeeOther("/signin?next=/setup/details")
    raise web.HTTPSeeOther("/setup/details")


def _consent_fields() -> list[tuple[str, str]]:
    return [(f"consent_{k.value}", label) for k, label in LABELS[Party.INTERVIEWER].items()]


@routes.get("/setup/details", name="details")
async def details_form(request: web.Request) -> web.Response:
    rid = await require_recruiter(request)
    draft = await _require_step(request)
    values = dict(draft.get("interviewer") or {})
    if not values:
        async with request.app[SESSIONS]() as session:
            recruiter = await session.get(Recruiter, rid)
            values = {"name": "", "email": recruiter.email if recruiter else ""}
    for kind in draft.get("consents", {}):
        values[f"consent_{kind}"] = True
    return render_form(request, "details.html", values, consents=_consent_fields())


@routes.post("/setup/details")
async def details_submit(request: web.Request) -> web.Response:
    await require_recruiter(request)
    await _require_step(request)
    form = await read_form(request)
    values: dict[str, Any] = {
        "name": form.get("interviewer_name", ""),
        "email": form.get("interviewer_email", ""),
    }
    given = {k for k in LABELS[Party.INTERVIEWER] if form.get(f"consent_{k.value}") == "yes"}
    for kind in given:
        values[f"consent_{kind.value}"] = True
    errors: dict[str, str] = {}
    person: Person | None = None
    try:
        person = validate_person(values["name"], values["email"], "interviewer")
    except InvalidInput as exc:
        errors[exc.field] = message_of(exc)
    for kind in REQUIRED[Party.INTERVIEWER]:
        if kind not in given:
            errors[f"consent_{kind.value}"] = _("This consent is required to continue.")
    if errors or person is None:
        return render_form(request, "details.html", values, errors, consents=_consent_fields())
    session, draft = await _draft(request)
    now = utcnow().isoformat()
    previous = draft.get("consents", {})
    draft["interviewer"] = {"name": person.name, "email": person.email}
    draft["consents"] = {k.value: previous.get(k.value, now) for k in given}
    session["setup"] = draft
    raise web.HTTPSeeOther("/setup/candidate")


@routes.get("/setup/candidate", name="candidate_details")
async def candidate_form(request: web.Request) -> web.Response:
    await require_recruiter(request)
    draft = await _require_step(request, "interviewer")
    return render_form(request, "candidate_details.html", dict(draft.get("candidate") or {}))


@routes.post("/setup/candidate")
async def candidate_submit(request: web.Request) -> web.Response:
    await require_recruiter(request)
    await _require_step(request, "interviewer")
    form = await read_form(request)
    values = {"name": form.get("candidate_name", ""), "email": form.get("candidate_email", "")}
    errors: dict[str, str] = {}
    person: Person | None = None
    try:
        person = validate_person(values["name"], values["email"], "candidate")
    except InvalidInput as exc:
        errors[exc.field] = message_of(exc)
    if person is None:
        # Report the email problem too, not only the first one found.
        try:
            validate_person(values["name"] or "x", values["email"], "candidate")
        except InvalidInput as exc:
            errors.setdefault(exc.field, message_of(exc))
        return render_form(request, "candidate_details.html", values, errors)
    session, draft = await _draft(request)
    draft["candidate"] = {"name": person.name, "email": person.email}
    session["setup"] = draft
    raise web.HTTPSeeOther("/setup/mode")


@routes.get("/setup/mode", name="mode")
async def mode_form(request: web.Request) -> web.Response:
    await require_recruiter(request)
    draft = await _require_step(request, "interviewer", "candidate")
    return render_form(
        request,
        "mode.html",
        {"mode": "now", "send_invitation": True, "question_count": DEFAULT_QUESTION_COUNT},
        draft=draft,
        max_questions=await _question_total(request, draft["specialization"]),
    )


async def _question_total(request: web.Request, specialization: str) -> int:
    async with request.app[SESSIONS]() as session:
        total = await session.scalar(
            select(func.count(Question.id)).where(Question.specialization_id == specialization)
        )
    return int(total or 0)


async def _invitation_wait(request: web.Request, rid: int) -> float | None:
    """Count one invitation email against the recruiter and their address; the seconds to
    wait when either has sent INVITATIONS_PER_HOUR (the address: three times that)."""
    limit = request.app[SETTINGS].invitations_per_hour
    limiter = request.app[LIMITER]
    waits = [
        await limiter.hit(f"invite:{rid}", limit, 3600),
        await limiter.hit(f"invite-ip:{limit_key(client_ip(request))}", limit * 3, 3600),
    ]
    blocked = [wait for wait in waits if wait is not None]
    return max(blocked) if blocked else None


@routes.post("/setup/mode")
async def mode_submit(request: web.Request) -> web.Response:
    rid = await require_recruiter(request)
    draft = await _require_step(request, "interviewer", "candidate")
    form = await read_form(request)
    values: dict[str, Any] = {
        "mode": form.get("mode", ""),
        "scheduled_date": form.get("scheduled_date", ""),
        "scheduled_time": form.get("scheduled_time", ""),
        "time_zone": form.get("time_zone", "") or "UTC",
        "send_invitation": form.get("send_invitation") == "yes",
        "question_count": form.get("question_count", ""),
    }
    max_questions = await _question_total(request, draft["specialization"])
    extra: dict[str, Any] = {"draft": draft, "max_questions": max_questions}
    try:
        question_count = int(values["question_count"] or DEFAULT_QUESTION_COUNT)
    except ValueError:
        question_count = 0
    if not 1 <= question_count <= max_questions:
        return render_form(
            request,
            "mode.html",
            values,
            {
                "question_count": _("Choose between 1 and %(count)s technical questions.")
                % {"count": max_questions}
            },
            **extra,
        )
    scheduled_at: datetime | None = None
    zone = "UTC"
    if values["mode"] not in {"now", "later"}:
        return render_form(
            request,
            "mode.html",
            values,
            {"mode": _("Choose when to conduct the interview.")},
            **extra,
        )
    if values["mode"] == "later":
        try:
            scheduled_at, zone = parse_schedule(
                values["scheduled_date"], values["scheduled_time"], values["time_zone"]
            )
        except InvalidInput as exc:
            return render_form(request, "mode.html", values, {exc.field: message_of(exc)}, **extra)
    settings = request.app[SETTINGS]
    if scheduled_at and values["send_invitation"]:
        wait = await _invitation_wait(request, rid)
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            message = _(
                "You have sent many invitations this hour. Try again in %(minutes)s minutes, "
                "or untick “Email the invitation” and send the link yourself."
            ) % {"minutes": minutes}
            return render_form(request, "mode.html", values, {"form": message}, status=429, **extra)
    consents = {
        ConsentKind(k): datetime.fromisoformat(v) for k, v in draft.get("consents", {}).items()
    }
    async with request.app[SESSIONS].begin() as session:
        recruiter = await session.get(Recruiter, rid)
        if recruiter is None:
            raise web.HTTPSeeOther("/signin")
        try:
            interview = await create_interview(
                session,
                recruiter,
                draft["specialization"],
                Person(**draft["interviewer"]),
                Person(**draft["candidate"]),
                consents,
                settings.privacy_policy_version,
                scheduled_at=scheduled_at,
                time_zone=zone,
                ip_address=client_ip(request),
                question_count=question_count,
            )
        except InvalidInput as exc:
            if exc.field.startswith("consent_"):
                raise web.HTTPSeeOther("/setup/details") from None
            raise web.HTTPSeeOther("/start") from None
        interview.language = specialization_language(interview.specialization_id)
        await session.refresh(interview, ["specialization"])
    web_session = await get_session(request)
    web_session.pop("setup", None)
    if scheduled_at and values["send_invitation"]:
        if await send_invitation(request.app, interview):
            web_session["flash"] = _("The invitation was emailed to %(email)s.") % {
                "email": interview.candidate_email
            }
        else:
            web_session["flash"] = _(
                "The invitation email could not be sent. Copy the link below and send it yourself."
            )
    raise web.HTTPSeeOther(f"/interviews/{interview.id}")
