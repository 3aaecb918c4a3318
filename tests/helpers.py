"""Steps a recruiter takes, as HTTP requests, shared by the tests."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient

from tests.conftest import Mailbox, csrf_of

PASSWORD = "correct horse battery"


async def register(
    client: TestClient, mailbox: Mailbox, email: str, password: str = PASSWORD
) -> None:
    """Register through the emailed password-setup link; ends signed in."""
    token = await csrf_of(client, "/register")
    response = await client.post("/register", data={"email": email, "csrf_token": token})
    assert response.status == 200, await response.text()
    message = mailbox.wait_for(email)
    link = mailbox.link_in(message)
    path = urlsplit(link).path
    token = await csrf_of(client, path)
    response = await client.post(
        path, data={"password": password, "password_repeat": password, "csrf_token": token}
    )
    assert response.status == 200, await response.text()


async def choose_specialization(client: TestClient, specialization: str = "python-backend") -> None:
    token = await csrf_of(client, "/start")
    response = await client.post(
        "/start", data={"specialization": specialization, "csrf_token": token}
    )
    assert response.status == 200


async def fill_details(
    client: TestClient, name: str = "Rita Recruiter", email: str = "rita@example.com"
) -> None:
    token = await csrf_of(client, "/setup/details")
    response = await client.post(
        "/setup/details",
        data={
            "interviewer_name": name,
            "interviewer_email": email,
            "consent_personal_data": "yes",
            "consent_ai_analysis": "yes",
            "csrf_token": token,
        },
    )
    assert response.status == 200 and "Enter candidate details" in await response.text()


async def fill_candidate(
    client: TestClient, name: str = "Carl Candidate", email: str = "carl@example.com"
) -> None:
    token = await csrf_of(client, "/setup/candidate")
    response = await client.post(
        "/setup/candidate",
        data={"candidate_name": name, "candidate_email": email, "csrf_token": token},
    )
    assert response.status == 200


async def create_interview_now(client: TestClient, **candidate: str) -> tuple[int, str]:
    """Walk the setup to a "right now" interview; returns its id and candidate link path."""
    await choose_specialization(client)
    await fill_details(client)
    await fill_candidate(client, **candidate)
    token = await csrf_of(client, "/setup/mode")
    response = await client.post("/setup/mode", data={"mode": "now", "csrf_token": token})
    assert response.status == 200, await response.text()
    interview_id = int(str(response.url).rsplit("/", 1)[1])
    body = await response.text()
    link = re.search(r'id="candidate-link" type="text" readonly value="([^"]+)"', body)
    assert link
    return interview_id, urlsplit(link.group(1)).path
