"""Signed-in recruiters' sessions, kept in the database so that any of them can be ended.

A browser holds a random token (256 bits); the table holds its SHA-256 and who it belongs to.
A session ends when it is deleted (sign-out, "Sign out everywhere", a password set through a
setup link), after `IDLE_TIMEOUT` without a request, or `LIFETIME` after sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import RecruiterSession, utcnow

LIFETIME = timedelta(days=7)
"""The absolute end of a session, however active it is."""
IDLE_TIMEOUT = timedelta(hours=12)
"""A session unused this long has ended."""
MAX_PER_RECRUITER = 10
"""Open sessions per recruiter; a sign-in beyond it ends the least recently used one."""
TOUCH_EVERY = timedelta(minutes=1)
"""`last_used_at` is written at most this often, so pages do not write on every request."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(
    session: AsyncSession,
    recruiter_id: int,
    user_agent: str = "",
    ip_address: str = "",
    now: datetime | None = None,
) -> str:
    """A new session for the recruiter; returns its token (stored hashed, shown once)."""
    now = now or utcnow()
    await session.execute(
        delete(RecruiterSession).where(
            RecruiterSession.recruiter_id == recruiter_id,
            (RecruiterSession.expires_at <= now)
            | (RecruiterSession.last_used_at <= now - IDLE_TIMEOUT),
        )
    )
    open_sessions = list(
        await session.scalars(
            select(RecruiterSession)
            .where(RecruiterSession.recruiter_id == recruiter_id)
            .order_by(RecruiterSession.last_used_at.desc(), RecruiterSession.id.desc())
        )
    )
    for old in open_sessions[MAX_PER_RECRUITER - 1 :]:
        await session.delete(old)
    token = secrets.token_urlsafe(32)
    session.add(
        RecruiterSession(
            recruiter_id=recruiter_id,
            token_hash=_hash(token),
            created_at=now,
            last_used_at=now,
            expires_at=now + LIFETIME,
            user_agent=user_agent[:200],
            ip_address=ip_address[:64],
        )
    )
    await session.flush()
    return token


async def find(
    session: AsyncSession, token: str, now: datetime | None = None
) -> RecruiterSession | None:
    """The live session for this token (its last use noted), or None if it has ended."""
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    found = await session.scalar(
        select(RecruiterSession).where(RecruiterSession.token_hash == _hash(token))
    )
    if found is None:
        return None
    if found.expires_at <= now or found.last_used_at <= now - IDLE_TIMEOUT:
        await session.delete(found)
        await session.flush()
        return None
    if now - found.last_used_at >= TOUCH_EVERY:
        found.last_used_at = now
        await session.flush()
    return found


async def recruiters_of(
    session: AsyncSession, tokens: Collection[str], now: datetime | None = None
) -> dict[str, int]:
    """The recruiter of each token whose session is live, read in one query (for many joins at
    once); ended ones are left out, and last use is noted as `find` does."""
    now = now or utcnow()
    wanted = {_hash(t): t for t in tokens if t and len(t) <= 128}
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(
                RecruiterSession.id,
                RecruiterSession.token_hash,
                RecruiterSession.recruiter_id,
                RecruiterSession.last_used_at,
            ).where(
                RecruiterSession.token_hash.in_(list(wanted)),
                RecruiterSession.expires_at > now,
                RecruiterSession.last_used_at > now - IDLE_TIMEOUT,
            )
        )
    ).all()
    stale = [r.id for r in rows if now - r.last_used_at >= TOUCH_EVERY]
    if stale:
        await session.execute(
            update(RecruiterSession).where(RecruiterSession.id.in_(stale)).values(last_used_at=now)
        )
    return {wanted[r.token_hash]: r.recruiter_id for r in rows}


async def end(session: AsyncSession, token: str) -> None:
    """Sign this browser out (nothing happens if it already was)."""
    await session.execute(
        delete(RecruiterSession).where(RecruiterSession.token_hash == _hash(token))
    )


async def end_by_id(session: AsyncSession, recruiter_id: int, session_id: int) -> bool:
    """End one of the recruiter's own sessions; False if it is not theirs or already ended."""
    result = await session.execute(
        delete(RecruiterSession)
        .where(RecruiterSession.id == session_id, RecruiterSession.recruiter_id == recruiter_id)
        .returning(RecruiterSession.id)
    )
    return result.first() is not None


async def end_all(session: AsyncSession, recruiter_id: int) -> int:
    """Sign the recruiter out everywhere; returns how many sessions ended."""
    result = await session.execute(
        delete(RecruiterSession)
        .where(RecruiterSession.recruiter_id == recruiter_id)
        .returning(RecruiterSession.id)
    )
    return len(result.all())


async def of_recruiter(
    session: AsyncSession, recruiter_id: int, now: datetime | None = None
) -> list[RecruiterSession]:
    """The recruiter's live sessions, the most recently used first."""
    now = now or utcnow()
    rows = await session.scalars(
        select(RecruiterSession)
        .where(
            RecruiterSession.recruiter_id == recruiter_id,
            RecruiterSession.expires_at > now,
            RecruiterSession.last_used_at > now - IDLE_TIMEOUT,
        )
        .order_by(RecruiterSession.last_used_at.desc(), RecruiterSession.id.desc())
    )
    return list(rows)


def is_token_of(row: RecruiterSession, token: str) -> bool:
    """Whether `row` is the session of this token (to mark "this browser" in a list)."""
    return secrets.compare_digest(row.token_hash, _hash(token))
