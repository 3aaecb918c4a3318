"""The eight findings of the attack on a fresh instance (issue 13), each as the attacker tried
it: every test here failed before its fix."""

from __future__ import annotations

import asyncio
import logging
import re
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from sqlalchemy import func, select

from media.oggopus import OggOpusWriter
from media.peer import MediaError, MediaServer
from media.remote_candidates import RemoteCandidatePolicy, turn_hosts
from media.storage import LocalStorage
from rooms import sessions
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Interview, Recruiter, RecruiterSession
from service.settings import Settings, SettingsError
from tests.conftest import Mailbox, csrf_of, with_redis
from tests.helpers import (
    PASSWORD,
    choose_specialization,
    create_interview_now,
    fill_candidate,
    fill_details,
    register,
)
from tests.test_candidate_and_presence import next_of
from web.account import safe_next

EVIL = "evil.example"


async def sign_in(client: TestClient, email: str, password: str = PASSWORD, **headers: str):  # type: ignore[no-untyped-def]
    token = await csrf_of(client, "/signin")
    return await client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": token, "next": "/interviews"},
        headers=headers,
        allow_redirects=False,
    )


def cookie_of(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))["p2pi_session"].value


async def copied(make_client, client: TestClient) -> TestClient:  # type: ignore[no-untyped-def]
    """Another browser holding a copy of `client`'s cookie, taken now."""
    thief = await make_client()
    thief.session.cookie_jar.update_cookies(
        {"p2pi_session": cookie_of(client)}, response_url=client.make_url("/")
    )
    return thief


async def count(settings: Settings, model: type) -> int:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        total = await db.scalar(select(func.count()).select_from(model))
    await engine.dispose()
    return int(total or 0)


async def closed_with(ws, wait: float = 5) -> int | None:  # type: ignore[no-untyped-def]
    """The close code the server sent (the client's own close_code may read 1006 when the
    server drops the connection right after its close frame)."""
    async with asyncio.timeout(wait):
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.CLOSE:
                return int(message.data)
            if message.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
                return ws.close_code  # type: ignore[no-any-return]


# 1. Open redirect after sign-in ----------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/phish",
        "/\n/evil.example/phish",
        "/\r\n/evil.example",
        "//evil.example/phish",
        "/\\evil.example",
        "/\\/evil.example",
        " //evil.example",
        "/\u200b/evil.example",
        "/\x00/evil.example",
        "/ /evil.example",
        "https://evil.example/",
        "evil.example",
    ],
)
def test_next_must_be_a_local_path(target: str) -> None:
    assert safe_next(target) == "/setup/details"


def test_local_next_paths_are_kept() -> None:
    for path in ["/interviews", "/interviews/7/results?tab=notes", "/setup/details#top"]:
        assert safe_next(path) == path


async def test_signing_in_never_redirects_to_another_host(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "redirect@example.com")
    await client.post("/signout", data={"csrf_token": await csrf_of(client, "/")})
    for raw in [
        "%2F%09%2Fevil.example%2Fphish",
        "%2F%0A%2Fevil.example%2Fphish",
        "%2F%5Cevil.example",
    ]:
        body = await (await client.get(f"/signin?next={raw}")).text()
        assert EVIL not in body and 'name="next" value="/setup/details"' in body
    token = await csrf_of(client, "/signin")
    for target in ["/\t/evil.example/phish", "/\n/evil.example/phish"]:
        response = await client.post(
            "/signin",
            data={
                "email": "redirect@example.com",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == "/setup/details"
        token = await csrf_of(client, "/signin")


# 2. Sessions that can be revoked ----------------------------------------------------------


async def test_a_copied_cookie_opens_nothing_after_sign_out(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "revoke@example.com")
    interview_id, _ = await create_interview_now(client)
    thief = await copied(make_client, client)
    assert (await thief.get("/interviews")).status == 200  # a copy works while signed in
    await client.post("/signout", data={"csrf_token": await csrf_of(client, "/interviews")})
    response = await thief.get("/interviews", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/signin")
    assert (await thief.get(f"/api/interviews/{interview_id}/result")).status == 401
    ws = await thief.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    assert (await next_of(ws, "error"))["code"] == "forbidden"


async def test_a_password_set_through_a_setup_link_ends_every_other_session(
    client, make_client, mailbox: Mailbox, settings: Settings
) -> None:
    await register(client, mailbox, "reset@example.com")
    laptop = await make_client()
    assert (await sign_in(laptop, "reset@example.com")).status == 303
    stolen = await copied(make_client, laptop)
    # Someone who reads the mailbox asks for a link and sets a new password with it.
    owner = await make_client()
    token = await csrf_of(owner, "/register")
    await owner.post("/register", data={"email": "reset@example.com", "csrf_token": token})
    path = mailbox.link_in(mailbox.wait_for("reset@example.com", count=2)).split("8080", 1)[1]
    token = await csrf_of(owner, path)
    new_password = "a brand new password"
    response = await owner.post(
        path, data={"password": new_password, "password_repeat": new_password, "csrf_token": token}
    )
    assert response.status == 200
    for old in (client, laptop, stolen):
        assert (await old.get("/interviews", allow_redirects=False)).status == 303
    assert (await owner.get("/interviews")).status == 200
    assert await count(settings, RecruiterSession) == 1


async def test_the_account_page_lists_sessions_and_signs_out_everywhere(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "everywhere@example.com")
    phone = await make_client()
    ua = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36"
    assert (await sign_in(phone, "everywhere@example.com", **{"User-Agent": ua})).status == 303
    listing = await (await client.get("/interviews")).text()
    assert 'href="/account"' in listing  # every signed-in page links to it
    page = await (await client.get("/account")).text()
    assert "Sign out everywhere" in page and "Chrome on Android" in page
    assert page.count("UTC</td>") == 4  # two sessions: signed in and last used
    assert "this browser" in page
    ws = await phone.ws_connect("/ws")
    interview_id, _ = await create_interview_now(client)
    await ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    await next_of(ws, "joined")

    token = await csrf_of(client, "/account")
    wrong = await client.post(
        "/account/sessions", data={"csrf_token": token, "end": "all", "password": "not it at all"}
    )
    assert wrong.status == 401
    assert (await phone.get("/interviews", allow_redirects=False)).status == 200
    response = await client.post(
        "/account/sessions",
        data={"csrf_token": token, "end": "all", "password": PASSWORD},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/signin?signed_out=everywhere"
    for browser in (client, phone):
        assert (await browser.get("/interviews", allow_redirects=False)).status == 303
    # The phone's open socket is closed (4401) rather than left in the call.
    assert await closed_with(ws) == 4401


async def test_one_session_can_be_signed_out_from_another(
    client, make_client, mailbox: Mailbox, settings: Settings
) -> None:
    await register(client, mailbox, "one@example.com")
    other = await make_client()
    await sign_in(other, "one@example.com")
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        ids = sorted(await db.scalars(select(RecruiterSession.id)))
    await engine.dispose()
    token = await csrf_of(other, "/account")
    response = await other.post(
        "/account/sessions", data={"csrf_token": token, "end": str(ids[0]), "password": PASSWORD}
    )
    assert "That session is signed out." in await response.text()
    assert (await client.get("/interviews", allow_redirects=False)).status == 303
    assert (await other.get("/interviews", allow_redirects=False)).status == 200


async def test_signing_in_again_replaces_the_browsers_session(
    client, mailbox: Mailbox, settings: Settings
) -> None:
    await register(client, mailbox, "again@example.com")
    before = cookie_of(client)
    assert (await sign_in(client, "again@example.com")).status == 303
    assert cookie_of(client) != before  # a fresh cookie: no fixation
    assert await count(settings, RecruiterSession) == 1  # and the old sign-in ended


async def test_sessions_are_shared_and_revoked_across_two_nodes(
    make_client, settings: Settings, mailbox: Mailbox, redis_url: str
) -> None:
    node_a = await make_client(with_redis(settings))
    node_b = await make_client(with_redis(settings))
    await register(node_a, mailbox, "nodes-session@example.com")
    same_browser = await copied(make_client, node_a)  # the same cookie, sent to node B's app
    node_b.session.cookie_jar.update_cookies(
        {"p2pi_session": cookie_of(node_a)}, response_url=node_b.make_url("/")
    )
    assert (await node_b.get("/interviews")).status == 200
    await node_a.post("/signout", data={"csrf_token": await csrf_of(node_a, "/interviews")})
    assert (await node_b.get("/interviews", allow_redirects=False)).status == 303
    assert (await same_browser.get("/interviews", allow_redirects=False)).status == 303


async def test_sessions_end_when_idle_or_old_and_are_capped(db: str) -> None:
    engine = make_engine(db)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with make_sessionmaker(engine).begin() as session:
        recruiter = Recruiter(email="clock@example.com")
        session.add(recruiter)
        await session.flush()
        token = await sessions.start(session, recruiter.id, now=start)
        assert await sessions.find(session, token, now=start + timedelta(hours=11)) is not None
        assert await sessions.find(session, token, now=start + timedelta(hours=22)) is not None
        assert (
            await sessions.find(session, token, now=start + timedelta(hours=34, minutes=1)) is None
        )
        kept = await sessions.start(session, recruiter.id, now=start)
        for hour in range(0, 7 * 24, 10):
            assert await sessions.find(session, kept, now=start + timedelta(hours=hour))
        assert await sessions.find(session, kept, now=start + sessions.LIFETIME) is None
        tokens = [await sessions.start(session, recruiter.id, now=start) for _ in range(15)]
        live = await sessions.of_recruiter(session, recruiter.id, now=start)
        assert len(live) == sessions.MAX_PER_RECRUITER
        assert await sessions.find(session, tokens[-1], now=start) is not None
    await engine.dispose()


# 3. The WebSocket cap cannot be filled from one address ----------------------------------


async def test_one_address_holds_at_most_ws_per_address_sockets(
    make_client, settings: Settings, mailbox: Mailbox
) -> None:
    node = await make_client(replace(settings, ws_per_address=5, trusted_proxies=("127.0.0.1/32",)))
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    held = [await node.ws_connect("/ws", headers=attacker) for _ in range(5)]
    refused = await node.ws_connect("/ws", headers=attacker)
    assert await closed_with(refused) == 4429
    ipv6 = [
        await node.ws_connect("/ws", headers={"X-Forwarded-For": f"2001:db8::{i}"})
        for i in range(6)
    ]
    assert await closed_with(ipv6[-1]) == 4429  # an IPv6 /64 is one address
    # A recruiter elsewhere still gets in and joins.
    await register(node, mailbox, "cap@example.com")
    interview_id, _ = await create_interview_now(node)
    ws = await node.ws_connect("/ws", headers={"X-Forwarded-For": "198.51.100.20"})
    await ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    assert (await next_of(ws, "joined"))["interview"] == interview_id
    # Closing one frees its place.
    await held[0].close()
    await asyncio.sleep(0.2)
    again = await node.ws_connect("/ws", headers=attacker)
    await again.send_json({"type": "ping"})
    assert (await next_of(again, "pong"))["type"] == "pong"


async def test_a_socket_that_does_not_join_in_time_is_closed(
    make_client, settings: Settings, mailbox: Mailbox
) -> None:
    node = await make_client(replace(settings, ws_join_deadline_s=0.5))
    idle = await node.ws_connect("/ws")
    pinging = await node.ws_connect("/ws")  # pings are not a join
    await pinging.send_json({"type": "ping"})
    await register(node, mailbox, "deadline@example.com")
    interview_id, _ = await create_interview_now(node)
    joined = await node.ws_connect("/ws")
    await joined.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    await next_of(joined, "joined")
    assert await closed_with(idle) == 4408
    assert await closed_with(pinging) == 4408
    await asyncio.sleep(0.6)
    await joined.send_json({"type": "ping"})
    assert (await next_of(joined, "pong"))["type"] == "pong"


async def test_a_flood_of_messages_is_rate_limited(make_client, settings: Settings) -> None:
    node = await make_client(replace(settings, ws_messages_per_s=20))
    ws = await node.ws_connect("/ws")
    for _ in range(400):
        await ws.send_str('{"type":"ping"}')
    seen: list[dict] = []
    async with asyncio.timeout(5):
        while len([m for m in seen if m["type"] == "pong"]) < 100:
            seen.append(await ws.receive_json())
    await asyncio.sleep(0.5)
    while True:
        try:
            seen.append(await ws.receive_json(timeout=0.3))
        except TimeoutError:
            break
    pongs = [m for m in seen if m["type"] == "pong"]
    assert 100 <= len(pongs) < 150
    assert any(m.get("code") == "rate_limited" for m in seen)
    await asyncio.sleep(1.0)
    await ws.send_str('{"type":"ping"}')
    assert (await next_of(ws, "pong"))["type"] == "pong"


# 4. The sign-in limiter ----------------------------------------------------------------


async def test_successful_sign_ins_are_not_counted(
    make_client, settings: Settings, mailbox: Mailbox
) -> None:
    node = await make_client(replace(settings, signin_attempts_per_15min=2))  # address: 12
    await register(node, mailbox, "often@example.com")
    for _ in range(15):
        assert (await sign_in(node, "often@example.com")).status == 303


async def test_a_success_clears_the_failures(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "clears@example.com")
    statuses = [
        (await sign_in(client, "clears@example.com", "wrong password")).status for _ in range(4)
    ]
    assert statuses == [401] * 4
    assert (await sign_in(client, "clears@example.com")).status == 303
    statuses = [
        (await sign_in(client, "clears@example.com", "wrong password")).status for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


async def test_behind_a_trusted_proxy_each_client_is_limited_alone(
    make_client, settings: Settings, mailbox: Mailbox
) -> None:
    node = await make_client(replace(settings, trusted_proxies=("127.0.0.1/32", "10.0.0.0/8")))
    await register(node, mailbox, "proxied@example.com")
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [
        (await sign_in(node, f"guess{i}@example.com", "wrong password", **attacker)).status
        for i in range(32)
    ]
    assert statuses[:30] == [401] * 30 and statuses[30:] == [429, 429]
    # A forged address on the left does not help: the proxy's view is read from the right.
    forged = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    assert (await sign_in(node, "guess@example.com", "wrong password", **forged)).status == 429
    two_proxies = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.1.2.3"}
    assert (await sign_in(node, "guess@example.com", "wrong password", **two_proxies)).status == 429
    # The recruiter behind the same proxy is not locked out.
    recruiter = {"X-Forwarded-For": "198.51.100.9"}
    assert (await sign_in(node, "proxied@example.com", **recruiter)).status == 303


async def test_forwarded_for_is_ignored_without_trusted_proxies(client, mailbox: Mailbox) -> None:
    for i in range(30):
        await sign_in(
            client, f"x{i}@example.com", "wrong password", **{"X-Forwarded-For": f"192.0.2.{i}"}
        )
    response = await sign_in(client, "y@example.com", "wrong", **{"X-Forwarded-For": "192.0.2.99"})
    assert response.status == 429


async def test_email_forms_share_one_limit_and_one_account(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "alice@example.com")
    for _ in range(5):
        assert (await sign_in(client, "alice@example.com", "wrong password")).status == 401
    for variant in ["alice@ｅxample.com", "ALICE@EXAMPLE.COM", " Alice@Example.com "]:
        assert (await sign_in(client, variant, "wrong password")).status == 429
    other = await make_client()
    other_address = {"X-Forwarded-For": "198.51.100.1"}  # not trusted: same TCP peer
    assert (await sign_in(other, "alice@ｅxample.com", **other_address)).status == 429
    # Registering the fullwidth form reaches the same account (the link goes to it).
    token = await csrf_of(other, "/register")
    await other.post("/register", data={"email": "ａlice@example.com", "csrf_token": token})
    assert mailbox.wait_for("alice@example.com", count=2)["To"] == "alice@example.com"


# 5. Invitations are not a spam relay -------------------------------------------------------


async def schedule(
    client: TestClient,
    interviewer: str = "Rita Recruiter",
    candidate: str = "Lena Later",
    invite: bool = True,
):  # type: ignore[no-untyped-def]
    await choose_specialization(client)
    await fill_details(client, name=interviewer)
    await fill_candidate(client, name=candidate, email="lena@example.com")
    token = await csrf_of(client, "/setup/mode")
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    data = {
        "mode": "later",
        "scheduled_date": day,
        "scheduled_time": "14:30",
        "time_zone": "Europe/Berlin",
        "csrf_token": token,
    }
    if invite:
        data["send_invitation"] = "yes"
    return await client.post("/setup/mode", data=data)


async def test_invitations_are_limited_per_account_and_per_address(
    aiohttp_client, make_client, settings: Settings, mailbox: Mailbox
) -> None:
    node = await make_client(replace(settings, invitations_per_hour=1))  # an address: 3
    await register(node, mailbox, "spam1@example.com")
    assert (await schedule(node)).status == 200
    refused = await schedule(node)
    assert refused.status == 429 and "many invitations" in await refused.text()
    assert await count(settings, Interview) == 1  # nothing stored from the refused request
    assert (await schedule(node, invite=False)).status == 200  # the link can still be sent by hand
    second = await aiohttp_client(node.server)  # another browser at the same address
    await register(second, mailbox, "spam2@example.com")
    assert (await schedule(second)).status == 200
    assert (await schedule(second)).status == 429
    third = await aiohttp_client(node.server)
    await register(third, mailbox, "spam3@example.com")
    assert (await schedule(third)).status == 429  # this address has sent its three
    invitations = [m for m in mailbox.messages if "lena@example.com" in str(m["To"])]
    assert len(invitations) == 2


async def test_an_invitation_carries_no_free_text_of_the_sender(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "phish@example.com")
    bait = (
        "Security Team of Your Bank: your account is locked, confirm at "
        "http://evil.example/login within 24 hours"
    )
    assert (
        await schedule(client, interviewer=bait, candidate="Dear customer of evil.example")
    ).status == 200
    message = mailbox.wait_for("lena@example.com")
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    text = parsed.get_body(("plain",)).get_content()
    calendar = [p for p in parsed.iter_attachments() if p.get_content_type() == "text/calendar"]
    ics = calendar[0].get_content()
    ics = ics.decode() if isinstance(ics, bytes) else ics
    for part in (text, ics, str(parsed["Subject"])):
        assert EVIL not in part and "locked" not in part and "Bank" not in part
    assert text.startswith("Hello,\n") and "Your interviewer invites you" in text
    plain = await schedule(client, interviewer="José Núñez-O'Brien", candidate="Zoë Ægir")
    assert plain.status == 200
    text = (
        mailbox.wait_for("lena@example.com", count=2)
        .get_payload()[0]
        .get_payload(decode=True)
        .decode()
    )
    assert "Hello Zoë Ægir," in text and "José Núñez-O'Brien invites you" in text


# 6. Unhandled errors -------------------------------------------------------------------


async def test_deeply_nested_json_is_a_400_everywhere(
    client, make_client, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    await register(client, mailbox, "nested@example.com")
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    nested = "[" * 30_000
    token = await csrf_of(candidate, link)
    caplog.set_level(logging.INFO)
    response = await candidate.post(
        f"{link}/join",
        data=nested,
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert response.status == 400 and "nested" in (await response.json())["error"]
    token = await csrf_of(client, f"/interviews/{interview_id}")
    for path in [
        f"/api/interviews/{interview_id}/notes",
        f"/api/interviews/{interview_id}/scores/1",
    ]:
        response = await client.post(
            path, data=nested, headers={"X-CSRF-Token": token, "Content-Type": "application/json"}
        )
        assert response.status == 400, path
    for body in ['{"override": NaN}', '{"text": "' + "x" * 10 + '"' + "}" * 3, "1" * 5000]:
        response = await client.post(
            f"/api/interviews/{interview_id}/scores/1",
            data=body,
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        assert response.status in (400, 422), body[:20]
    # On the WebSocket, before any join and without a cookie.
    stranger = await make_client()
    ws = await stranger.ws_connect("/ws")
    for _ in range(1000):
        await ws.send_str(nested)
    codes = [(await ws.receive_json(timeout=5))["code"] for _ in range(200)]
    assert set(codes) == {"bad_json"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in caplog.text


async def test_an_unexpected_failure_is_one_log_line(
    client, make_client, mailbox: Mailbox, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    await register(client, mailbox, "oneline@example.com")
    _, link = await create_interview_now(client)

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug\nspread over lines")

    caplog.set_level(logging.INFO)
    monkeypatch.setattr("signaling.admission.join_facts", broken)
    monkeypatch.setattr("web.interview_pages.list_for_recruiter", broken)
    ws = await (await make_client()).ws_connect("/ws")
    for _ in range(3):
        await ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
        assert (await next_of(ws, "error"))["code"] == "internal"
    response = await client.get("/interviews")
    assert response.status == 500 and "Traceback" not in await response.text()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 4
    for record in errors:
        assert record.exc_info is None and "\n" not in record.getMessage()
        assert "RuntimeError" in record.getMessage() and "test_security.py" in record.getMessage()


async def test_setup_mode_refuses_impossible_zones_and_dates(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "zones@example.com")
    await choose_specialization(client)
    await fill_details(client)
    await fill_candidate(client)
    token = await csrf_of(client, "/setup/mode")
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    cases = [
        ((day, "10:00", "Europe"), "Unknown time zone"),
        ((day, "10:00", "x" * 1500), "Unknown time zone"),
        ((day, "10:00", "../../../etc/passwd"), "Unknown time zone"),
        (("9999-12-31", "23:59", "Etc/GMT+12"), "Enter a date and a time."),
        (("9999-12-31", "23:59", "UTC"), "within the next year"),
    ]
    for (date_, time_, zone), message in cases:
        response = await client.post(
            "/setup/mode",
            data={
                "mode": "later",
                "scheduled_date": date_,
                "scheduled_time": time_,
                "time_zone": zone,
                "csrf_token": token,
            },
        )
        assert response.status == 422, zone[:20]
        body = await response.text()
        assert message in body and "x" * 65 + "&#39;." not in body  # the message is cut short


async def test_ids_in_urls_are_ascii_digits(client, make_client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "digits@example.com")
    interview_id, _ = await create_interview_now(client)
    arabic = str(interview_id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for path in [
        "/interviews/²",
        f"/interviews/{arabic}",
        f"/interviews/{arabic}/results",
        f"/api/interviews/{arabic}/stage",
        "/interviews/99999999999",
        f"/interviews/{2**31}",
        f"/interviews/{interview_id}/recordings/{2**40}",
    ]:
        response = await client.get(path)
        assert response.status == 404, path
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "recruiter", "interview": 2**40})
    assert (await next_of(ws, "error"))["code"] == "bad_message"


# 7. Headers ---------------------------------------------------------------------------


async def test_security_headers_on_every_answer(client) -> None:
    token = await csrf_of(client, "/register")
    answers = [
        await client.get("/"),
        await client.get("/interviews", allow_redirects=False),
        await client.get("/no-such-page"),
        await client.post("/signin", data={"email": "a@example.com"}),
        await client.post(
            "/register", data={"email": "x" * (2 * 1024 * 1024), "csrf_token": token}
        ),
        await client.get("/static/js/api.js"),
    ]
    assert [a.status for a in answers] == [200, 303, 404, 403, 413, 200]
    for answer in answers:
        csp = answer.headers["Content-Security-Policy"]
        assert "connect-src 'self' ws://127.0.0.1:8080" in csp, answer.status
        assert " ws: " not in csp + " " and " wss: " not in csp + " "
        assert "base-uri 'none'" in csp and "form-action 'self'" in csp
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Server"] == "p2p-interview"
        assert "Strict-Transport-Security" not in answer.headers
    assert answers[1].headers["Cache-Control"] == "no-store"


async def test_hsts_when_configured(make_client, settings: Settings) -> None:
    node = await make_client(replace(settings, hsts_seconds=31536000))
    for response in [await node.get("/"), await node.get("/interviews", allow_redirects=False)]:
        assert (
            response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        )


def test_the_new_settings_are_read_and_checked() -> None:
    https = Settings.from_env({"PUBLIC_URL": "https://interviews.example.com"})
    assert https.hsts_seconds == 31536000 and https.secure_cookies
    assert Settings.from_env({}).hsts_seconds == 0
    assert (
        Settings.from_env({"PUBLIC_URL": "https://x.example", "HSTS_SECONDS": "0"}).hsts_seconds
        == 0
    )
    parsed = Settings.from_env(
        {
            "TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,::1",
            "WS_PER_ADDRESS": "7",
            "WS_JOIN_DEADLINE_S": "2.5",
            "WS_MESSAGES_PER_S": "9",
            "INVITATIONS_PER_HOUR": "4",
        }
    )
    assert parsed.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16", "::1/128")
    assert (parsed.ws_per_address, parsed.ws_join_deadline_s) == (7, 2.5)
    assert (parsed.ws_messages_per_s, parsed.invitations_per_hour) == (9, 4)
    for bad in [
        {"TRUSTED_PROXIES": "10.0.0.300"},
        {"HSTS_SECONDS": "-1"},
        {"WS_PER_ADDRESS": "0"},
        {"WS_JOIN_DEADLINE_S": "soon"},
    ]:
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


async def test_secure_cookies_use_the_host_prefix(make_client, settings: Settings) -> None:
    node = await make_client(replace(settings, secure_cookies=True))
    response = await node.get("/signin")
    assert "__Host-p2pi_session=" in response.headers["Set-Cookie"]
    assert "Secure" in response.headers["Set-Cookie"]


# 8. Secrets and personal data at rest -------------------------------------------------------


async def test_without_smtp_mail_goes_to_a_private_outbox_not_the_log(
    make_client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # LOG_LEVEL's default
    node = await make_client(replace(settings, smtp_host=""))
    token = await csrf_of(node, "/register")
    await node.post("/register", data={"email": "outbox@example.com", "csrf_token": token})
    outbox = settings.data_dir / "outbox"
    [saved] = list(outbox.iterdir())
    message = BytesParser(policy=policy.default).parsebytes(saved.read_bytes())
    content = message.get_body(("plain",)).get_content()
    path = content.split("/setup-password/", 1)[1].split()[0]
    assert message["To"] == "outbox@example.com"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    await node.get(f"/setup-password/{path}")
    token = await csrf_of(node, f"/setup-password/{path}")
    await node.post(
        f"/setup-password/{path}",
        data={"password": PASSWORD, "password_repeat": PASSWORD, "csrf_token": token},
    )
    response = await schedule(node, interviewer="Rita Recruiter", candidate="Lena Later")
    assert response.status == 200
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        candidate_token = (await db.scalar(select(Interview))).candidate_token
    await engine.dispose()
    assert len(list(outbox.iterdir())) == 2
    # The service's own log (`serve` runs without an access log: paths carry the links).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "email saved to" in logged
    for secret in [path, "outbox@example.com", candidate_token, "lena@example.com", "Lena Later"]:
        assert secret not in logged


async def test_recordings_and_the_database_are_private(tmp_path: Path, db: str, client) -> None:
    storage = LocalStorage(tmp_path / "recordings")
    path = storage.segment_path(7, "candidate", 0)
    writer = OggOpusWriter(path, serial=1)
    writer.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, tmp_path / "recordings"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    if db.startswith("sqlite"):
        database = Path(db.split(":///", 1)[1])
        for name in (database, Path(f"{database}-wal")):
            if name.exists():
                assert stat.S_IMODE(name.stat().st_mode) == 0o600, name


def this_hosts_ipv4() -> str | None:
    from aioice.ice import get_host_addresses

    found = [
        a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")
    ]
    return found[0] if found else None


async def offer_with_extra_candidates(*targets: tuple[str, int]) -> tuple[str, RTCPeerConnection]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    extra = "".join(
        f"a=candidate:{i}9 1 udp 2130706431 {host} {port} typ host\r\n"
        for i, (host, port) in enumerate(targets)
    )
    return sdp.replace("a=end-of-candidates\r\n", extra + "a=end-of-candidates\r\n"), pc


class Listener(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)


async def listen(host: str) -> tuple[asyncio.DatagramTransport, Listener, int]:
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(Listener, local_addr=(host, 0))
    return transport, listener, transport.get_extra_info("sockname")[1]  # type: ignore[return-value]


async def test_the_server_peer_checks_only_addresses_the_page_may_name(tmp_path: Path) -> None:
    lan = this_hosts_ipv4()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    media = MediaServer(LocalStorage(tmp_path), [], on_segment=lambda *a: None)
    target, heard, port = await listen(lan)
    local, heard_local, local_port = await listen("127.0.0.1")
    try:
        sdp, pc = await offer_with_extra_candidates((lan, port), ("127.0.0.1", local_port))
        # The page's socket came from an address on the internet: neither is its address.
        await media.accept("probe", 1, "candidate", sdp, client_address="203.0.113.5")
        await asyncio.sleep(2.0)
        assert heard.packets == [] and heard_local.packets == []
        await media.close("probe")
        await pc.close()
        # A page at that address is checked (the positive control: the test can hear STUN).
        sdp, pc = await offer_with_extra_candidates((lan, port))
        await media.accept("probe", 1, "candidate", sdp, client_address=lan)
        async with asyncio.timeout(5):
            while not heard.packets:  # noqa: ASYNC110 - the protocol has no event to wait on
                await asyncio.sleep(0.05)
        assert heard.packets[0][:2] == b"\x00\x01"  # a STUN binding request
        await pc.close()
    finally:
        await media.close_all()
        target.close()
        local.close()


async def test_a_page_whose_candidates_are_all_dropped_still_connects(tmp_path: Path) -> None:
    """Browsers hide their addresses behind mDNS names, which the server never resolves: the
    page's own checks reach the server, which learns it as a peer-reflexive candidate."""
    media = MediaServer(LocalStorage(tmp_path), [], on_segment=lambda *a: None)
    sdp, pc = await offer_with_extra_candidates()
    hidden = re.sub(r"(a=candidate:\S+ 1 udp \d+ )\S+", r"\g<1>0b1c2d3e-aaaa.local", sdp)
    assert ".local" in hidden
    try:
        answer = await media.accept("hidden", 1, "candidate", hidden, client_address="203.0.113.5")
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(10):
            while pc.connectionState != "connected":  # noqa: ASYNC110 - no event for this
                await asyncio.sleep(0.05)
        server_pc = media._connections["hidden"].pc
        assert server_pc.iceConnectionState in ("completed", "connected")
        remote = server_pc.getTransceivers()[0].receiver.transport.transport.getRemoteCandidates()
        assert {c.type for c in remote} == {"prflx"}
    finally:
        await pc.close()
        await media.close_all()


async def test_the_candidate_policy() -> None:
    policy = RemoteCandidatePolicy(
        turn_hosts(
            [
                {"urls": ["turn:198.51.100.50:3478?transport=udp", "stun:x.example"]},
                {"urls": "turns:[2001:db8:5::1]:5349"},
            ]
        )
    )
    assert policy.relay_hosts == ["198.51.100.50", "2001:db8:5::1"]
    lines = [
        "a=candidate:1 1 udp 1 203.0.113.5 5000 typ srflx raddr 10.0.0.2 rport 5000",
        "a=candidate:2 1 udp 1 10.0.0.2 5000 typ host",
        "a=candidate:3 1 udp 1 198.51.100.50 6000 typ relay raddr 203.0.113.5 rport 1",
        "a=candidate:4 1 udp 1 2001:db8:5::1 6000 typ relay",
        "a=candidate:5 1 udp 1 1f2e3d4c-aaaa.local 5000 typ host",
        "a=candidate:6 1 tcp 1 203.0.113.5 9 typ host tcptype active",
        "a=candidate:7 1 udp 1 127.0.0.1 6379 typ host",
        "a=candidate:8 1 udp 1 224.0.0.251 5353 typ host",
        "a=candidate:9 1 udp 1 2001:db8:1:2::99 5000 typ host",
        "a=candidate:10 1 udp",
    ]
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + "".join(f"{x}\r\n" for x in lines)
    kept, dropped = await policy.filter(sdp, "203.0.113.5")
    assert [x.split()[0] for x in kept.splitlines() if x.startswith("a=candidate")] == [
        "a=candidate:1",
        "a=candidate:3",
        "a=candidate:4",
    ]
    assert dropped == 7 and kept.startswith("v=0\r\nm=audio")
    kept, _ = await policy.filter(sdp, "2001:db8:1:2::7")
    assert "2001:db8:1:2::99" in kept and "203.0.113.5 5000" not in kept
    kept, _ = await policy.filter(sdp, "127.0.0.1")
    assert "127.0.0.1 6379" in kept and "224.0.0.251" not in kept


async def test_the_server_peer_records_opus_only(tmp_path: Path) -> None:
    media = MediaServer(LocalStorage(tmp_path), [], on_segment=lambda *a: None)
    sdp, pc = await offer_with_extra_candidates()
    answer = await media.accept("a", 1, "candidate", sdp, client_address="127.0.0.1")
    assert "opus/48000" in answer and "PCMU" not in answer and "G722" not in answer
    with pytest.raises(MediaError, match="Opus"):
        await media.accept(
            "b",
            1,
            "candidate",
            sdp.replace("opus/48000/2", "speex/48000/2"),
            client_address="127.0.0.1",
        )
    assert media.connections == 1
    await media.close_all()
    await pc.close()


async def test_websocket_is_refused_from_another_origin_even_signed_in(
    client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "origin@example.com")
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/ws", headers={"Origin": "http://127.0.0.1.evil.example"})
    assert caught.value.status == 403
