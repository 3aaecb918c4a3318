"""Part 1 of the guide over HTTP: register, sign in, details, candidate, mode, waiting room."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

from sqlalchemy import select

from rooms.db import make_engine, make_sessionmaker
from rooms.models import Consent, Interview
from tests.conftest import Mailbox, csrf_of
from tests.helpers import (
    PASSWORD,
    choose_specialization,
    create_interview_now,
    fill_candidate,
    fill_details,
    register,
)


async def test_welcome_page_has_interview_card_with_start_assessment(client) -> None:
    response = await client.get("/")
    body = await response.text()
    assert response.status == 200
    assert "<h2>Interview</h2>" in body and "Start assessment" in body


async def test_specialization_page_lists_six_from_the_bank(client) -> None:
    body = await (await client.get("/start")).text()
    names = re.findall(r'name="specialization" value="([^"]+)"', body)
    assert len(names) >= 6
    assert "python-backend" in names


async def test_choosing_a_specialization_asks_to_sign_in(client) -> None:
    token = await csrf_of(client, "/start")
    response = await client.post(
        "/start",
        data={"specialization": "python-backend", "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/signin?next=/setup/details"


async def test_unknown_specialization_is_refused(client) -> None:
    token = await csrf_of(client, "/start")
    response = await client.post("/start", data={"specialization": "cobol", "csrf_token": token})
    assert response.status == 422
    assert "Choose the interview technology or specialization." in await response.text()


async def test_recruiter_registers_sets_password_from_emailed_link_and_is_signed_in(
    client, mailbox: Mailbox
) -> None:
    await choose_specialization(client)
    await register(client, mailbox, "new@example.com")
    message = mailbox.messages[0]
    assert message["Subject"] == "Access to your test interview on p2p-interview"
    # Signed in, and back on the setup path where they left it.
    body = await (await client.get("/setup/details")).text()
    assert "Enter your details" in body
    assert 'value="new@example.com"' in body


async def test_setup_link_is_single_use(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "once@example.com")
    link = mailbox.link_in(mailbox.messages[0])
    path = link.split("8080", 1)[1]
    response = await client.get(path)
    assert response.status == 410
    assert "already been used" in await response.text()


async def test_expired_setup_link_is_refused(client, mailbox: Mailbox, settings) -> None:
    token = await csrf_of(client, "/register")
    await client.post("/register", data={"email": "late@example.com", "csrf_token": token})
    path = mailbox.link_in(mailbox.messages[0]).split("8080", 1)[1]
    engine = make_engine(settings.database_url)
    from rooms.models import PasswordSetupLink

    async with make_sessionmaker(engine).begin() as session:
        for link in await session.scalars(select(PasswordSetupLink)):
            link.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    await engine.dispose()
    response = await client.get(path)
    assert response.status == 410
    assert "expired" in await response.text()
    token = await csrf_of(client, "/register")
    response = await client.post(
        path, data={"password": PASSWORD, "password_repeat": PASSWORD, "csrf_token": token}
    )
    assert response.status == 410


async def test_malformed_setup_token_gets_a_clear_page(client) -> None:
    for path in ["/setup-password/x", "/setup-password/" + "a" * 300, "/setup-password/%00%ff"]:
        response = await client.get(path)
        assert response.status in (404, 410)
        assert "Traceback" not in await response.text()


async def test_short_or_mismatched_password_is_refused(client, mailbox: Mailbox) -> None:
    token = await csrf_of(client, "/register")
    await client.post("/register", data={"email": "pw@example.com", "csrf_token": token})
    path = mailbox.link_in(mailbox.messages[0]).split("8080", 1)[1]
    token = await csrf_of(client, path)
    response = await client.post(
        path, data={"password": "short", "password_repeat": "short", "csrf_token": token}
    )
    assert response.status == 422 and "at least 10 characters" in await response.text()
    response = await client.post(
        path, data={"password": PASSWORD, "password_repeat": PASSWORD + "x", "csrf_token": token}
    )
    assert response.status == 422 and "do not match" in await response.text()
    # The link still works after the mistakes.
    response = await client.post(
        path, data={"password": PASSWORD, "password_repeat": PASSWORD, "csrf_token": token}
    )
    assert response.status == 200


async def test_invalid_email_on_register(client, mailbox: Mailbox) -> None:
    token = await csrf_of(client, "/register")
    for bad in ["", "not-an-email", "a@b", "x" * 400 + "@example.com"]:
        response = await client.post("/register", data={"email": bad, "csrf_token": token})
        assert response.status == 422
        assert "email" in (await response.text()).lower()
    assert mailbox.messages == []


async def test_sign_in_with_wrong_password_then_right_one(
    client, mailbox: Mailbox, make_client
) -> None:
    await register(client, mailbox, "sign@example.com")
    other = await make_client()
    token = await csrf_of(other, "/signin")
    response = await other.post(
        "/signin",
        data={"email": "sign@example.com", "password": "wrong password", "csrf_token": token},
    )
    assert response.status == 401
    assert "The email or password is incorrect." in await response.text()
    response = await other.post(
        "/signin",
        data={
            "email": "sign@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/interviews",
        },
    )
    assert response.status == 200
    assert "<h1>Interviews</h1>" in await response.text()


async def test_sign_in_is_rate_limited(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "limit@example.com")
    token = await csrf_of(client, "/signin")
    statuses = []
    for _ in range(7):
        response = await client.post(
            "/signin",
            data={"email": "limit@example.com", "password": "nope nope nope", "csrf_token": token},
        )
        statuses.append(response.status)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    # Even the right password waits until the window ends.
    response = await client.post(
        "/signin", data={"email": "limit@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status == 429
    assert "Too many sign-in attempts" in await response.text()


async def test_setup_link_requests_are_rate_limited(client, mailbox: Mailbox) -> None:
    token = await csrf_of(client, "/register")
    statuses = [
        (
            await client.post("/register", data={"email": "flood@example.com", "csrf_token": token})
        ).status
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    assert len(mailbox.messages) == 3


async def test_forms_without_csrf_token_are_refused(client) -> None:
    for path, data in [
        ("/start", {"specialization": "python-backend"}),
        ("/signin", {"email": "a@example.com", "password": "x"}),
        ("/register", {"email": "a@example.com"}),
        ("/setup/details", {}),
    ]:
        response = await client.post(path, data=data)
        assert response.status == 403, path
        assert "did not come from this site" in await response.text()
    await client.get("/start")
    response = await client.post(
        "/start", data={"specialization": "python-backend", "csrf_token": "forged"}
    )
    assert response.status == 403


async def test_details_require_both_consents_on_the_server(client, mailbox: Mailbox) -> None:
    await choose_specialization(client)
    await register(client, mailbox, "consent@example.com")
    token = await csrf_of(client, "/setup/details")
    base = {
        "interviewer_name": "Rita",
        "interviewer_email": "rita@example.com",
        "csrf_token": token,
    }
    for consents in [{}, {"consent_personal_data": "yes"}, {"consent_ai_analysis": "yes"}]:
        response = await client.post("/setup/details", data={**base, **consents})
        body = await response.text()
        assert response.status == 422
        assert "This consent is required to continue." in body
    # Skipping ahead is not possible either.
    response = await client.get("/setup/candidate", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/setup/details"


async def test_details_and_candidate_validate_names_and_emails(client, mailbox: Mailbox) -> None:
    await choose_specialization(client)
    await register(client, mailbox, "valid@example.com")
    token = await csrf_of(client, "/setup/details")
    response = await client.post(
        "/setup/details",
        data={
            "interviewer_name": " ",
            "interviewer_email": "nope",
            "consent_personal_data": "yes",
            "consent_ai_analysis": "yes",
            "csrf_token": token,
        },
    )
    assert response.status == 422 and "Enter a name." in await response.text()
    await fill_details(client)
    token = await csrf_of(client, "/setup/candidate")
    response = await client.post(
        "/setup/candidate",
        data={"candidate_name": "Carl", "candidate_email": "carl@", "csrf_token": token},
    )
    body = await response.text()
    assert response.status == 422 and "Enter a valid email address" in body
    assert 'value="Carl"' in body  # what was typed is kept


async def test_interview_right_now_opens_the_waiting_room(
    client, mailbox: Mailbox, settings
) -> None:
    await register(client, mailbox, "now@example.com")
    interview_id, link = await create_interview_now(client)
    body = await (await client.get(f"/interviews/{interview_id}")).text()
    assert "Candidate Carl Candidate has not joined yet" in body
    assert "Copy" in body and "Equipment setup" in body
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, base64url: 256 bits
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        interview = await session.scalar(select(Interview).where(Interview.id == interview_id))
        consents = list(
            await session.scalars(select(Consent).where(Consent.interview_id == interview_id))
        )
    await engine.dispose()
    assert interview.state == "waiting"
    assert {(c.party, c.kind) for c in consents} == {
        ("interviewer", "personal_data"),
        ("interviewer", "ai_analysis"),
    }
    assert all(c.policy_version == settings.privacy_policy_version and c.given_at for c in consents)


async def test_interview_later_is_stored_in_utc_listed_and_invitation_emailed(
    client, mailbox: Mailbox, settings
) -> None:
    await register(client, mailbox, "later@example.com")
    await choose_specialization(client, "devops-sre")
    await fill_details(client)
    await fill_candidate(client, name="Lena Later", email="lena@example.com")
    token = await csrf_of(client, "/setup/mode")
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    response = await client.post(
        "/setup/mode",
        data={
            "mode": "later",
            "scheduled_date": day,
            "scheduled_time": "14:30",
            "time_zone": "Europe/Berlin",
            "send_invitation": "yes",
            "csrf_token": token,
        },
    )
    body = await response.text()
    assert response.status == 200
    assert "The invitation was emailed to lena@example.com." in body
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        interview = await session.scalar(select(Interview))
    await engine.dispose()
    assert interview.state == "scheduled"
    assert interview.time_zone == "Europe/Berlin"
    assert interview.scheduled_at.hour in (
        12,
        13,
    )  # 14:30 in Berlin is 13:30 (CET) or 12:30 (CEST) UTC
    assert interview.scheduled_at.minute == 30
    invitation = mailbox.wait_for("lena@example.com")
    parsed = BytesParser(policy=policy.default).parsebytes(invitation.as_bytes())
    ics = [p for p in parsed.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert ics, "no calendar attachment"
    calendar = ics[0].get_content()
    calendar = calendar.decode() if isinstance(calendar, bytes) else calendar
    assert f"DTSTART:{interview.scheduled_at:%Y%m%dT%H%M%S}Z" in calendar
    assert interview.candidate_token in calendar
    listing = await (await client.get("/interviews")).text()
    assert (
        "Lena Later" in listing and interview.candidate_token in listing and "scheduled" in listing
    )


async def test_later_in_the_past_or_bad_zone_is_refused(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "past@example.com")
    await choose_specialization(client)
    await fill_details(client)
    await fill_candidate(client)
    token = await csrf_of(client, "/setup/mode")
    cases = [
        (
            {"scheduled_date": "2020-01-01", "scheduled_time": "10:00", "time_zone": "UTC"},
            "in the future",
        ),
        (
            {"scheduled_date": "", "scheduled_time": "", "time_zone": "UTC"},
            "Enter a date and a time.",
        ),
        (
            {
                "scheduled_date": "2030-01-01",
                "scheduled_time": "10:00",
                "time_zone": "Mars/Olympus",
            },
            "Unknown time zone",
        ),
    ]
    for fields, message in cases:
        response = await client.post(
            "/setup/mode", data={"mode": "later", "csrf_token": token, **fields}
        )
        assert response.status == 422
        assert message in await response.text()


async def test_a_second_recruiter_gets_404_for_the_first_ones_interview(
    client, mailbox: Mailbox, make_client
) -> None:
    await register(client, mailbox, "first@example.com")
    interview_id, _ = await create_interview_now(client)
    other = await make_client()
    await register(other, mailbox, "second@example.com")
    for method, path in [
        ("GET", f"/interviews/{interview_id}"),
        ("POST", f"/interviews/{interview_id}/start"),
    ]:
        token = await csrf_of(other, "/interviews")
        response = await other.request(method, path, data={"csrf_token": token})
        assert response.status == 404, path
        assert "Carl Candidate" not in await response.text()
    listing = await (await other.get("/interviews")).text()
    assert "Carl Candidate" not in listing


async def test_pages_need_sign_in(client) -> None:
    for path in ["/interviews", "/interviews/1", "/setup/details"]:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/signin")


async def test_bad_interview_ids_are_404(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "ids@example.com")
    for path in [
        "/interviews/abc",
        "/interviews/99999",
        "/interviews/" + "9" * 40,
        "/interviews/-1",
    ]:
        response = await client.get(path)
        assert response.status == 404, path


async def test_start_interview_is_refused_before_the_candidate_joins(
    client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "early@example.com")
    interview_id, _ = await create_interview_now(client)
    token = await csrf_of(client, f"/interviews/{interview_id}")
    response = await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    assert response.status == 409
    assert "has not joined yet" in await response.text()


async def test_oversized_form_is_refused_cleanly(client) -> None:
    token = await csrf_of(client, "/register")
    response = await client.post(
        "/register", data={"email": "x" * (2 * 1024 * 1024), "csrf_token": token}
    )
    assert response.status == 413
    assert "too large" in await response.text()
