"""Outgoing email: through SMTP when configured, else saved to an outbox folder."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import unicodedata
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib

from web import i18n
from web.i18n import N_, _

log = logging.getLogger(__name__)

SETUP_SUBJECT = N_("Access to your test interview on p2p-interview")
"""The subject of the password-setup email (in English; each email is in its reader's language)."""


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class OutboxMailer:
    """No SMTP server: each message is saved as an .eml file (0600, in a 0700 folder) for the
    operator. The log says only where: its links are passwords and candidates' keys, its
    addresses and names personal data."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def _write(self, path: Path, data: bytes) -> None:
        self.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.outbox.chmod(0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)

    async def send(self, message: EmailMessage) -> None:
        name = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}.eml"
        path = self.outbox / name
        await asyncio.to_thread(self._write, path, bytes(message))
        log.info("email saved to %s (no SMTP_HOST set)", path)


class SmtpMailer:
    """Real delivery through aiosmtplib."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        use_tls: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username or None, password or None
        self.starttls, self.use_tls = starttls, use_tls

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            use_tls=self.use_tls,
            timeout=20,
        )


def _base(sender: str, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = make_msgid(domain="p2p-interview")
    return message


def password_setup_email(sender: str, to: str, link: str) -> EmailMessage:
    """The email with the single-use password-setup link."""
    message = _base(sender, to, _(SETUP_SUBJECT))
    message.set_content(
        _("Hello,")
        + "\n\n"
        + _("Follow this link to create your password and sign in to p2p-interview:")
        + f"\n\n{link}\n\n"
        + _(
            "The link works once and expires in 24 hours. "
            "If you did not ask for it, ignore this email."
        )
        + "\n"
    )
    return message


def _ics_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def invitation_ics(
    uid: str,
    start: datetime,
    summary: str,
    description: str,
    url: str,
    organizer: str,
    language: str = "en",
) -> str:
    """An iCalendar (RFC 5545) event for the interview, 1 hour long, in UTC; its texts are in
    `language` (RFC 5545 LANGUAGE)."""
    stamp = datetime.now().astimezone().strftime("%Y%m%dT%H%M%SZ")
    fmt = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//p2p-interview//EN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{start.strftime(fmt)}",
        f"DTEND:{(start + timedelta(hours=1)).strftime(fmt)}",
        f"SUMMARY;LANGUAGE={language}:{_ics_escape(summary)}",
        f"DESCRIPTION;LANGUAGE={language}:{_ics_escape(description)}",
        f"URL:{url}",
        f"ORGANIZER:mailto:{organizer}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


MAX_NAME_IN_EMAIL = 60
MAX_WORDS_IN_NAME = 5
_DOMAIN_LIKE = re.compile(r"\w[.．。]\w")


def plain_name(text: str) -> str | None:
    """A person's name fit to appear in an email to someone else, or None: nothing but
    letters, spaces, hyphens, apostrophes and dots, at most 60 characters in 5 words, and
    nothing that reads as a web address. Registration is open: without this, anyone could
    mail anyone a text of their own under this service's name."""
    if (
        not text
        or len(text) > MAX_NAME_IN_EMAIL
        or len(text.split()) > MAX_WORDS_IN_NAME
        or _DOMAIN_LIKE.search(text)
    ):
        return None
    for ch in text:
        if ch not in " -'’." and unicodedata.category(ch)[0] not in "LM":
            return None
    return text


def invitation_email(
    sender: str,
    to: str,
    candidate_name: str,
    interviewer_name: str,
    interviewer_email: str,
    specialization: str,
    start: datetime,
    local_time: str,
    link: str,
    uid: str,
) -> EmailMessage:
    """The candidate's invitation with the interview link and an .ics attachment. The names
    typed by the recruiter appear only when they are plain names (see `plain_name`)."""
    candidate = plain_name(candidate_name)
    interviewer = plain_name(interviewer_name)
    names = {
        "candidate": candidate,
        "interviewer": interviewer,
        "specialization": specialization,
        "when": local_time,
    }
    message = _base(sender, to, _("Your %(specialization)s interview on p2p-interview") % names)
    message["Reply-To"] = interviewer_email
    hello = _("Hello %(candidate)s,") % names if candidate else _("Hello,")
    invites = (
        _("%(interviewer)s invites you to a %(specialization)s interview on %(when)s.")
        if interviewer
        else _("Your interviewer invites you to a %(specialization)s interview on %(when)s.")
    )
    message.set_content(
        f"{hello}\n\n{invites % names}\n\n"
        + _(
            "Join from this link at that time (Chrome, Edge or Firefox; allow camera and microphone):"
        )
        + f"\n{link}\n\n"
        + _("The calendar invitation is attached.")
        + "\n"
    )
    summary = (
        _("%(specialization)s interview with %(interviewer)s")
        if interviewer
        else _("%(specialization)s interview")
    )
    ics = invitation_ics(
        uid,
        start,
        summary % names,
        _("Join: %(link)s") % {"link": link},
        link,
        interviewer_email,
        language=i18n.current(),
    )
    message.add_attachment(
        ics.encode(),
        maintype="text",
        subtype="calendar",
        filename="interview.ics",
        params={"method": "REQUEST"},
    )
    return message
