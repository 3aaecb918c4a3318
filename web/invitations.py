"""Emailing the candidate their invitation with a calendar attachment."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from aiohttp import web

from rooms.models import Interview
from web.keys import MAILER, SETTINGS
from web.mail import invitation_email

log = logging.getLogger(__name__)


def candidate_link(app: web.Application, interview: Interview) -> str:
    return f"{app[SETTINGS].public_url}/i/{interview.candidate_token}"


def local_time_text(interview: Interview) -> str:
    """The scheduled time as the recruiter chose it, e.g. "Tue 1 Dec 2026, 14:30 (Europe/Berlin)"."""
    if interview.scheduled_at is None:
        return "now"
    local = interview.scheduled_at.astimezone(ZoneInfo(interview.time_zone))
    return f"{local:%a %-d %b %Y, %H:%M} ({interview.time_zone})"


async def send_invitation(app: web.Application, interview: Interview) -> bool:
    """Email the invitation; a mail failure is logged and reported, never loses the interview."""
    settings = app[SETTINGS]
    assert interview.scheduled_at is not None
    message = invitation_email(
        settings.mail_from,
        interview.candidate_email,
        interview.candidate_name,
        interview.interviewer_name,
        interview.interviewer_email,
        interview.specialization.name,
        interview.scheduled_at,
        local_time_text(interview),
        candidate_link(app, interview),
        uid=f"interview-{interview.id}-{interview.candidate_token[:8]}@p2p-interview",
    )
    try:
        await app[MAILER].send(message)
    except Exception:
        log.exception("could not email the invitation for interview %s", interview.id)
        return False
    return True
