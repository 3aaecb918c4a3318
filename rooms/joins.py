"""What a page's join is checked against, read for many joins in one query.

A node restart brings thousands of pages back within seconds; each join still reads the
database (no cached answer can outlive an ended interview or a revoked session), but the joins
that arrive together share one query per kind instead of several each.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import Interview

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""A candidate link's token, as rooms.interviews issues it."""


@dataclass(frozen=True, slots=True)
class JoinFacts:
    """The few columns of an interview that a join is decided on."""

    id: int
    state: str
    recruiter_id: int
    candidate_token: str


def valid_token(token: str) -> bool:
    """Whether `token` has the shape of a candidate link's token (others are never looked up)."""
    return bool(token) and _TOKEN_RE.match(token) is not None


async def join_facts(
    session: AsyncSession, ids: Collection[int], tokens: Collection[str]
) -> list[JoinFacts]:
    """The interviews with these ids or candidate tokens (malformed tokens are skipped)."""
    tokens = [t for t in tokens if valid_token(t)]
    conditions = []
    if ids:
        conditions.append(Interview.id.in_(list(ids)))
    if tokens:
        conditions.append(Interview.candidate_token.in_(tokens))
    if not conditions:
        return []
    rows = await session.execute(
        select(
            Interview.id, Interview.state, Interview.recruiter_id, Interview.candidate_token
        ).where(or_(*conditions))
    )
    return [JoinFacts(r.id, r.state, r.recruiter_id, r.candidate_token) for r in rows]
