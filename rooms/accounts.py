"""Recruiter accounts: argon2id passwords and single-use, expiring password-setup links."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rooms import sessions
from rooms.errors import InvalidInput, SetupLinkError, WrongCredentials
from rooms.models import PasswordSetupLink, Recruiter, utcnow

SETUP_LINK_LIFETIME = timedelta(hours=24)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both paths cost the same time.
    Made on first use, not at import: every CLI command would pay for it."""
    return _hasher.hash(secrets.token_urlsafe(16))


def email_key(value: str) -> str:
    """The form of an address that accounts are found and limited by: NFKC, then casefold, so
    `alice@ｅxample.com` (a fullwidth e) and `ALICE@example.com` are alice@example.com."""
    return _fold(value)[:320]


def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value or "").strip().casefold()


def normalize_email(value: str, field: str = "email") -> str:
    """A valid, normalized email address, or InvalidInput with a clear message."""
    value = _fold(value)
    if not value:
        raise InvalidInput(field, "Enter an email address.")
    if len(value) > 320:
        raise InvalidInput(field, "That email address is too long.")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            field, "Enter a valid email address (%(reason)s).", reason=str(exc)
        ) from exc
    return _fold(result.normalized)


def check_password_rules(password: str) -> None:
    """Raise InvalidInput unless the password is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "password",
            "Use at least %(count)s characters for the password.",
            count=MIN_PASSWORD_LENGTH,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            "password", "Use at most %(count)s characters.", count=MAX_PASSWORD_LENGTH
        )


async def hash_password(password: str) -> str:
    """An argon2id hash, computed off the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def find_by_email(session: AsyncSession, email: str) -> Recruiter | None:
    """The account of this address, in any case or Unicode form (see `email_key`)."""
    return await session.scalar(select(Recruiter).where(Recruiter.email == email_key(email)))


async def create_recruiter(
    session: AsyncSession, email: str, password: str | None = None
) -> Recruiter:
    """A new recruiter account (no password yet unless one is given)."""
    email = normalize_email(email)
    if await find_by_email(session, email):
        raise InvalidInput("email", "An account with this email already exists.")
    recruiter = Recruiter(email=email)
    if password is not None:
        check_password_rules(password)
        recruiter.password_hash = await hash_password(password)
    session.add(recruiter)
    await session.flush()
    return recruiter


async def authenticate(session: AsyncSession, email: str, password: str) -> Recruiter:
    """The recruiter with this email and password, or WrongCredentials."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise WrongCredentials() from None
    recruiter = await find_by_email(session, email)
    stored = recruiter.password_hash if recruiter else None
    ok = await _verify(stored or _dummy_hash(), password)
    if not (ok and recruiter and stored):
        raise WrongCredentials()
    if _hasher.check_needs_rehash(stored):
        recruiter.password_hash = await hash_password(password)
    return recruiter


async def issue_setup_link(
    session: AsyncSession, email: str, now: datetime | None = None
) -> tuple[Recruiter, str]:
    """Create the account if needed and a fresh setup token (returned once, stored hashed)."""
    email = normalize_email(email)
    now = now or utcnow()
    recruiter = await find_by_email(session, email)
    if recruiter is None:
        recruiter = Recruiter(email=email)
        session.add(recruiter)
        await session.flush()
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordSetupLink(
            recruiter_id=recruiter.id,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + SETUP_LINK_LIFETIME,
        )
    )
    await session.flush()
    return recruiter, token


async def check_setup_link(
    session: AsyncSession, token: str, now: datetime | None = None
) -> PasswordSetupLink:
    """The usable link for this token, or SetupLinkError saying why it cannot be used."""
    now = now or utcnow()
    if not token or len(token) > 128:
        raise SetupLinkError("This password-setup link is not valid.")
    link = await session.scalar(
        select(PasswordSetupLink).where(PasswordSetupLink.token_hash == _token_hash(token))
    )
    if link is None:
        raise SetupLinkError("This password-setup link is not valid.")
    if link.used_at is not None:
        raise SetupLinkError("This password-setup link has already been used.")
    if link.expires_at <= now:
        raise SetupLinkError("This password-setup link has expired.")
    return link


async def use_setup_link(
    session: AsyncSession, token: str, password: str, now: datetime | None = None
) -> Recruiter:
    """Set the password through a setup link, spend the link (and its older siblings) and end
    every session of the account."""
    now = now or utcnow()
    link = await check_setup_link(session, token, now)
    check_password_rules(password)
    # Spend every open link of this account in one guarded UPDATE: of two concurrent
    # uses of the same link, only one sees its row still unused.
    spent = await session.execute(
        update(PasswordSetupLink)
        .where(
            PasswordSetupLink.recruiter_id == link.recruiter_id,
            PasswordSetupLink.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(PasswordSetupLink.id)
    )
    if link.id not in set(spent.scalars()):
        raise SetupLinkError("This password-setup link has already been used.")
    recruiter = await session.get(Recruiter, link.recruiter_id)
    assert recruiter is not None
    recruiter.password_hash = await hash_password(password)
    # Whoever knew the old password (or held a browser signed in with it) is out.
    await sessions.end_all(session, recruiter.id)
    return recruiter
