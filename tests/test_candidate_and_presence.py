"""The candidate's link and Join, and the waiting room's live status over the WebSocket."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Mailbox, csrf_of, with_redis
from tests.helpers import create_interview_now, register


async def join_consents(client: TestClient, link: str, consents: list[str]) -> tuple[int, dict]:
    token = await csrf_of(client, link)
    response = await client.post(
        f"{link}/join", json={"consents": consents}, headers={"X-CSRF-Token": token}
    )
    return response.status, await response.json()


async def next_of(ws, kind: str, wait: float = 5) -> dict:
    """The next message of this type, skipping others."""
    async with asyncio.timeout(wait):
        while True:
            message = json.loads((await ws.receive()).data)
            if message["type"] == kind:
                return message


async def presence_where(ws, candidate: dict, wait: float = 5) -> dict:
    """Wait for a presence message whose candidate part matches."""
    async with asyncio.timeout(wait):
        while True:
            presence = await next_of(ws, "presence")
            if {key: presence["candidate"][key] for key in candidate} == candidate:
                return presence


async def test_candidate_page_greets_with_specialization_and_recruiter(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "greet@example.com")
    _, link = await create_interview_now(client)
    candidate = await make_client()
    response = await candidate.get(link)
    body = await response.text()
    assert response.status == 200
    assert "Hello, Carl Candidate" in body
    assert "Python backend" in body and "Rita Recruiter" in body
    assert "Equipment check" in body and "Join" in body
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path",
    ["/i/short", "/i/" + "A" * 43, "/i/" + "%00" * 20, "/i/" + "x" * 500, "/i/" + "-" * 43],
)
async def test_bad_candidate_links_get_a_clear_page(client, path: str) -> None:
    response = await client.get(path)
    body = await response.text()
    assert response.status == 404
    assert "Traceback" not in body
    assert "link is not valid" in body or "does not exist" in body


async def test_candidate_must_give_both_consents(client, make_client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "cons@example.com")
    _, link = await create_interview_now(client)
    candidate = await make_client()
    status, body = await join_consents(candidate, link, ["recording"])
    assert status == 422 and body["error"] == "This consent is required to continue."
    status, body = await join_consents(candidate, link, [])
    assert status == 422
    status, body = await join_consents(candidate, link, ["recording", "ai_analysis"])
    assert status == 200 and body == {"ok": True}


async def test_join_rejects_malformed_bodies(client, make_client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "body@example.com")
    _, link = await create_interview_now(client)
    candidate = await make_client()
    token = await csrf_of(candidate, link)
    for data in ["not json", "[]", '{"consents": "recording"}', '{"consents": [1, 2]}']:
        response = await candidate.post(
            f"{link}/join",
            data=data,
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        assert response.status == 400
        assert "error" in await response.json()
    response = await candidate.post(f"{link}/join", json={"consents": ["recording", "ai_analysis"]})
    assert response.status == 403  # no CSRF token


async def test_waiting_status_goes_ready_live_and_survives_a_reload(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "live@example.com")
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    recruiter_ws = await client.ws_connect("/ws")
    await recruiter_ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    joined = await next_of(recruiter_ws, "joined")
    assert joined["presence"]["candidate"] == {"connected": False, "ready": False, "peer": None}

    candidate_ws = await candidate.ws_connect("/ws")
    await candidate_ws.send_json(
        {"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]}
    )
    await next_of(candidate_ws, "joined")
    await presence_where(recruiter_ws, {"connected": True, "ready": False})

    # "ready" before the consents are stored is refused.
    await candidate_ws.send_json({"type": "ready"})
    error = await next_of(candidate_ws, "error")
    assert error["code"] == "consent_required"

    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    await candidate_ws.send_json({"type": "ready"})
    await presence_where(recruiter_ws, {"connected": True, "ready": True})

    # A reloaded waiting page shows the right status at once.
    body = await (await client.get(f"/interviews/{interview_id}")).text()
    assert "Candidate Carl Candidate is ready and waiting" in body
    assert (
        ">\n      Start interview\n    </button>" in body
        or "Start interview" in body.split("start-button")[1][:200]
    )

    # The candidate leaves: back to "has not joined yet".
    await candidate_ws.close()
    await presence_where(recruiter_ws, {"connected": False, "ready": False})
    body = await (await client.get(f"/interviews/{interview_id}")).text()
    assert "Candidate Carl Candidate has not joined yet" in body
    await recruiter_ws.close()


async def test_start_interview_after_the_candidate_joined(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "start@example.com")
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    candidate_ws = await candidate.ws_connect("/ws")
    await candidate_ws.send_json(
        {"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]}
    )
    await next_of(candidate_ws, "joined")
    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    token = await csrf_of(client, f"/interviews/{interview_id}")
    response = await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    assert response.status == 200
    assert 'id="stage"' in await response.text()  # the room, its stage panel filled by the page
    event = await next_of(candidate_ws, "event")
    assert event["data"] == {"state": "plan"}
    # A second "Start interview" is an illegal transition with a clear message.
    response = await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    assert response.status == 409
    assert "Cannot start the interview" in await response.text()


async def test_recruiter_cannot_join_someone_elses_room(
    client, make_client, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "owner@example.com")
    interview_id, _ = await create_interview_now(client)
    other = await make_client()
    await register(other, mailbox, "intruder@example.com")
    ws = await other.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    assert (await next_of(ws, "error"))["code"] == "not_found"
    anonymous = await make_client()
    ws = await anonymous.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    assert (await next_of(ws, "error"))["code"] == "forbidden"


async def test_websocket_from_another_site_is_refused(client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403


async def test_presence_across_two_nodes_sharing_redis(
    make_client, settings, mailbox: Mailbox, redis_url: str
) -> None:
    node_a = await make_client(with_redis(settings))
    node_b = await make_client(with_redis(settings))
    await register(node_a, mailbox, "nodes@example.com")
    interview_id, link = await create_interview_now(node_a)
    recruiter_ws = await node_a.ws_connect("/ws")
    await recruiter_ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    await next_of(recruiter_ws, "joined")
    candidate_ws = await node_b.ws_connect("/ws")
    await candidate_ws.send_json(
        {"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]}
    )
    joined = await next_of(candidate_ws, "joined")
    assert joined["presence"]["recruiter"]["connected"] is True
    assert (await join_consents(node_b, link, ["recording", "ai_analysis"]))[0] == 200
    await candidate_ws.send_json({"type": "ready"})
    await presence_where(recruiter_ws, {"connected": True, "ready": True})
    # Relayed signaling crosses nodes too.
    await candidate_ws.send_json({"type": "restart"})
    relayed = await next_of(recruiter_ws, "restart")
    assert relayed["from"] == joined["peer"]
    # Presence lives in Redis: the waiting room renders the live status on either node.
    body = await (await node_a.get(f"/interviews/{interview_id}")).text()
    assert "is ready and waiting" in body
    await candidate_ws.close()
    await recruiter_ws.close()
