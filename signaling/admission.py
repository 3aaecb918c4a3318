"""The database reads a join is decided on, batched: the joins that arrive together share them.

Nothing is cached: every answer comes from a query that began after the join asked, so an
interview that has just ended or a session that has just been revoked is refused at once, on
every node. What a burst of joins (a node restart's reconnect storm) saves is the per-query
cost: one transaction with one query per kind for all the joins waiting, instead of several
ORM queries each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from rooms.db import SessionMaker
from rooms.joins import JoinFacts, join_facts
from rooms.sessions import recruiters_of

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Joins answered by one round of queries, at most (the rest wait for the next round)."""


class Admissions:
    """Looks up sign-ins and interviews for joins, many joins a query.

    Each method returns a future at once, so that a join asking two things (a recruiter's
    sign-in and interview) has both in the same round.
    """

    def __init__(self, sessions: SessionMaker, max_batch: int = MAX_BATCH) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._waiting: list[tuple[str, Any, asyncio.Future[Any]]] = []
        self._round: asyncio.Task[None] | None = None

    def recruiter(self, sign_in_token: str) -> asyncio.Future[int | None]:
        """The recruiter whose live session this token is, or None (ended, expired, unknown)."""
        return self._ask("session", sign_in_token)

    def interview(self, interview_id: int) -> asyncio.Future[JoinFacts | None]:
        """The interview with this id, or None."""
        return self._ask("id", interview_id)

    def candidate(self, token: str) -> asyncio.Future[JoinFacts | None]:
        """The interview behind this candidate link token, or None."""
        return self._ask("token", token)

    async def close(self) -> None:
        for _, _, future in self._waiting:
            future.cancel()
        self._waiting.clear()
        if self._round is not None:
            self._round.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._round

    def _ask(self, kind: str, key: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((kind, key, future))
        if self._round is None or self._round.done():
            self._round = asyncio.create_task(self._answer(), name="join-lookups")
        return future

    async def _answer(self) -> None:
        await asyncio.sleep(0)  # the joins of this turn of the loop go in the same round
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                answers = await self._look_up(batch)
            except Exception as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for kind, key, future in batch:
                if not future.done():
                    future.set_result(answers.get((kind, key)))

    async def _look_up(self, batch: list[tuple[str, Any, asyncio.Future[Any]]]) -> dict[Any, Any]:
        ids = {key for kind, key, _ in batch if kind == "id"}
        tokens = {key for kind, key, _ in batch if kind == "token"}
        sign_ins = {key for kind, key, _ in batch if kind == "session"}
        answers: dict[Any, Any] = {}
        async with self._sessions.begin() as session:
            if sign_ins:
                for token, recruiter in (await recruiters_of(session, sign_ins)).items():
                    answers["session", token] = recruiter
            if ids or tokens:
                for facts in await join_facts(session, ids, tokens):
                    if facts.id in ids:
                        answers["id", facts.id] = facts
                    if facts.candidate_token in tokens:
                        answers["token", facts.candidate_token] = facts
        return answers
