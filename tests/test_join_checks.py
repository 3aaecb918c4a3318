"""Joins are decided on the database as it is when the join arrives, even many at once.

The hub batches the reads of concurrent joins (signaling/admission.py); these tests check that a
page that joined a moment ago does not make the next join of the same room or the same sign-in
pass once the interview has ended or the session was revoked, and that a batch answers each
join for itself.
"""

from __future__ import annotations

import asyncio
import json
import secrets

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from rooms import sessions
from rooms.models import Recruiter
from tests.conftest import Mailbox, csrf_of
from tests.helpers import create_interview_now, register
from web.keys import SESSIONS


async def reply_to_join(client: TestClient, join: dict) -> dict:
    """Open a socket, send `join`, return the first `joined` or `error` message."""
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "join", **join})
    async with asyncio.timeout(10):
        while True:
            message = json.loads((await ws.receive()).data)
            if message["type"] in ("joined", "error"):
                await ws.close()
                return message


async def recruiter_id_of(client: TestClient, email: str) -> int:
    app = client.server.app
    assert app is not None
    async with app[SESSIONS]() as db:
        found = await db.scalar(select(Recruiter.id).where(Recruiter.email == email))
    assert found is not None
    return found


async def test_a_revoked_session_is_refused_at_the_next_join(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "revoked@example.com")
    interview_id, _ = await create_interview_now(client)
    as_recruiter = {"role": "recruiter", "interview": interview_id}
    assert (await reply_to_join(client, as_recruiter))["type"] == "joined"
    # A socket already open when the session ends elsewhere (another node did it: this node's
    # hub was not told) is refused when it joins.
    waiting = await client.ws_connect("/ws")
    app = client.server.app
    assert app is not None
    async with app[SESSIONS].begin() as db:
        assert await sessions.end_all(db, await recruiter_id_of(client, "revoked@example.com"))
    await waiting.send_json({"type": "join", **as_recruiter})
    message = json.loads((await waiting.receive(timeout=10)).data)
    assert (message["type"], message["code"]) == ("error", "forbidden")
    assert (await reply_to_join(client, as_recruiter))["code"] == "forbidden"


async def test_an_ended_interview_is_refused_right_after_pages_joined_it(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "ended@example.com")
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    token = await csrf_of(candidate, link)
    response = await candidate.post(
        f"{link}/join",
        json={"consents": ["recording", "ai_analysis"]},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 200
    csrf = await csrf_of(client, f"/interviews/{interview_id}")
    response = await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": csrf})
    assert response.status == 200
    as_candidate = {"role": "candidate", "token": link.rsplit("/", 1)[1]}
    as_recruiter = {"role": "recruiter", "interview": interview_id}
    # Pages are in the room (this node is subscribed to it) when the interview ends.
    in_room = await candidate.ws_connect("/ws")
    await in_room.send_json({"type": "join", **as_candidate})
    assert json.loads((await in_room.receive(timeout=10)).data)["type"] == "joined"
    assert (await reply_to_join(client, as_recruiter))["type"] == "joined"
    response = await client.post(f"/interviews/{interview_id}/end", headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    assert (await reply_to_join(candidate, as_candidate))["code"] == "ended"
    assert (await reply_to_join(client, as_recruiter))["code"] == "ended"
    await in_room.close()


async def test_joins_arriving_together_each_get_their_own_answer(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "owner-batch@example.com")
    mine, link = await create_interview_now(client)
    other = await make_client()
    await register(other, mailbox, "other-batch@example.com")
    theirs, _ = await create_interview_now(other)
    anonymous = await make_client()
    good = link.rsplit("/", 1)[1]
    cases = (
        [(anonymous, {"role": "candidate", "token": good}, mine)] * 6
        + [(anonymous, {"role": "candidate", "token": "not a token"}, "not_found")] * 3
        + [(anonymous, {"role": "candidate", "token": secrets.token_urlsafe(32)}, "not_found")] * 3
        + [(client, {"role": "recruiter", "interview": mine}, mine)] * 4
        + [(client, {"role": "recruiter", "interview": theirs}, "not_found")] * 3
        + [(other, {"role": "recruiter", "interview": theirs}, theirs)] * 3
        + [(other, {"role": "recruiter", "interview": 10**9}, "not_found")] * 2
        + [(anonymous, {"role": "recruiter", "interview": mine}, "forbidden")] * 3
    )
    sockets = await asyncio.gather(*(who.ws_connect("/ws") for who, _, _ in cases))
    # All joins sent before any answer is read: they reach the hub together.
    await asyncio.gather(
        *(ws.send_json({"type": "join", **j}) for ws, (_, j, _) in zip(sockets, cases, strict=True))
    )
    for ws, (_, join, expected) in zip(sockets, cases, strict=True):
        message = json.loads((await ws.receive(timeout=10)).data)
        while message["type"] not in ("joined", "error"):
            message = json.loads((await ws.receive(timeout=10)).data)
        got = message["interview"] if message["type"] == "joined" else message["code"]
        assert got == expected, (join, message)
        await ws.close()


async def test_the_batched_sign_in_check_sees_what_find_sees(client) -> None:
    from datetime import timedelta

    from rooms import accounts
    from rooms.models import RecruiterSession, utcnow

    app = client.server.app
    assert app is not None
    now = utcnow()
    async with app[SESSIONS].begin() as db:
        recruiter = await accounts.create_recruiter(db, "batch@example.com", "a long pass phrase")
        ended = await sessions.start(db, recruiter.id, now=now)
        await sessions.end(db, ended)
        live = await sessions.start(db, recruiter.id, now=now - timedelta(minutes=5))
        idle = await sessions.start(db, recruiter.id, now=now - sessions.IDLE_TIMEOUT)
        old = await sessions.start(db, recruiter.id, now=now - sessions.LIFETIME)
        # Past its lifetime though used a moment ago.
        await db.execute(
            update(RecruiterSession)
            .where(RecruiterSession.expires_at <= now)
            .values(last_used_at=now - timedelta(seconds=5))
        )
    async with app[SESSIONS].begin() as db:
        found = await sessions.recruiters_of(db, [live, idle, old, ended, "x" * 200, ""], now=now)
        assert found == {live: recruiter.id}
        for token in (idle, old, ended):
            assert await sessions.find(db, token, now=now) is None
    async with app[SESSIONS]() as db:
        used = await db.scalar(
            select(RecruiterSession.last_used_at).where(
                RecruiterSession.recruiter_id == recruiter.id
            )
        )
    assert used is not None and used >= now - timedelta(seconds=1)  # its use was noted
