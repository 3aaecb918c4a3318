"""Emailing the candidate their invitation with a calendar attachment."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from aiohttp import web

from rooms.models import Interview
from web import i18n
from web.i18n import _, format_datetime
from web.keys import MAILER, SETTINGS
from web.mail import invitation_email

log = logging.getLogger(__name__)


def candidate_link(app: web.Application, interview: Interview) -> str:
    return f"{app[SETTINGS].public_url}/i/{interview.candidate_token}"


def local_time_text(interview: Interview) -> str:
    """The scheduled time in the recruiter's zone and the reader's language, e.g. "Tue, Dec 1,
    2026, 14:30 (Europe/Berlin)"."""
    if interview.scheduled_at is None:
        return _("now")
    return f"{format_datetime(interview.scheduled_at, interview.time_zone)} ({interview.time_zone})"


async def send_invitation(app: web.Application, interview: Interview) -> bool:
    """Email the invitation; a mail failure is logged and reported, never loses the interview."""
    assert interview.scheduled_at is not None
    with i18n.use(interview.language):
        message = _invitation(app, interview)
    try:
        await app[MAILER].send(message)
    except Exception:
        log.exception("could not email the invitation for interview %s", interview.id)
        return False
    return True


def _invitation(app: web.Application, interview: Interview) -> EmailMessage:
    """The invitation, written in the current language (the interview's)."""
    settings = app[SETTINGS]
    assert interview.scheduled_at is not None
    return invitation_email(
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
