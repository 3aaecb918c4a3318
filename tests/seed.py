"""Data the browser tests start from, written straight to the database."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rooms import accounts
from rooms.consents import ConsentKind
from rooms.db import make_engine, make_sessionmaker
from rooms.interviews import Person, create_interview
from rooms.models import utcnow


@dataclass(frozen=True)
class Seeded:
    email: str
    password: str
    interview_id: int
    token: str


async def _seed(url: str, email: str, password: str, specialization: str) -> Seeded:
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as session:
        recruiter = await accounts.create_recruiter(session, email, password)
        interview = await create_interview(
            session,
            recruiter,
            specialization,
            Person("Rita Recruiter", "rita@example.com"),
            Person("Carl Candidate", "carl@example.com"),
            {ConsentKind.PERSONAL_DATA: utcnow(), ConsentKind.AI_ANALYSIS: utcnow()},
            "test",
        )
        seeded = Seeded(email, password, interview.id, interview.candidate_token)
    await engine.dispose()
    return seeded


def seed_interview(
    url: str,
    email: str = "rita@example.com",
    password: str = "a long pass phrase",
    specialization: str = "python-backend",
) -> Seeded:
    """A recruiter with a password and a "right now" interview; safe to call beside Playwright."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed(url, email, password, specialization)).result()
