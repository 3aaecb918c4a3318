"""Part 2 over HTTP: plan topics, technical questions, notes, finish, end; and what the candidate sees."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from rooms.db import make_engine, make_sessionmaker
from rooms.models import InterviewEvent, Question
from tests.conftest import Mailbox, csrf_of
from tests.helpers import create_interview_now, register
from tests.test_candidate_and_presence import join_consents, next_of


async def started_interview(
    client: TestClient, make_client, mailbox: Mailbox
) -> tuple[int, str, str, TestClient]:
    """A recruiter and a joined candidate, after "Start interview"; returns id, link, csrf, candidate."""
    await register(client, mailbox, "conduct@example.com")
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    token = await csrf_of(client, f"/interviews/{interview_id}")
    response = await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    assert response.status == 200
    return interview_id, link, token, candidate


async def api(client: TestClient, token: str, path: str, body: object = None) -> tuple[int, dict]:
    if body is None:
        response = await client.get(path, headers={"Accept": "application/json"})
    else:
        response = await client.post(path, json=body, headers={"X-CSRF-Token": token})
    return response.status, await response.json()


async def test_plan_topics_are_saved_at_once_in_any_order(
    client, make_client, mailbox: Mailbox
) -> None:
    interview_id, _, token, _ = await started_interview(client, make_client, mailbox)
    status, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    assert status == 200 and view["state"] == "plan"
    topics = view["topics"]
    assert len(topics) >= 8 and not any(t["checked"] for t in topics)
    for topic in (topics[5], topics[1]):
        status, view = await api(
            client, token, f"/api/interviews/{interview_id}/topics/{topic['id']}", {"checked": True}
        )
        assert status == 200
    # As after a reload: a fresh read has the same checks.
    _, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    assert [t["checked"] for t in view["topics"]].count(True) == 2
    assert view["topics"][5]["checked"] and view["topics"][1]["checked"]
    _, view = await api(
        client,
        token,
        f"/api/interviews/{interview_id}/topics/{topics[5]['id']}",
        {"checked": False},
    )
    assert [t["id"] for t in view["topics"] if t["checked"]] == [topics[1]["id"]]


async def test_topics_of_another_specialization_or_bad_bodies_are_refused(
    client, make_client, mailbox: Mailbox, settings
) -> None:
    interview_id, _, token, _ = await started_interview(client, make_client, mailbox)
    status, _ = await api(
        client, token, f"/api/interviews/{interview_id}/topics/999999", {"checked": True}
    )
    assert status == 404
    _, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    topic = view["topics"][0]["id"]
    status, body = await api(
        client, token, f"/api/interviews/{interview_id}/topics/{topic}", {"checked": "yes"}
    )
    assert status == 422 and body["error"] == "Say checked: true or false."
    response = await client.post(
        f"/api/interviews/{interview_id}/topics/{topic}",
        data="{",
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert response.status == 400


async def test_technical_part_walks_all_questions_and_the_candidate_never_sees_the_answer(
    client, make_client, mailbox: Mailbox, settings
) -> None:
    interview_id, link, token, candidate = await started_interview(client, make_client, mailbox)
    candidate_ws = await candidate.ws_connect("/ws")
    await candidate_ws.send_json(
        {"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]}
    )
    await next_of(candidate_ws, "joined")

    status, view = await api(client, token, f"/api/interviews/{interview_id}/technical", {})
    assert status == 200 and view["state"] == "technical"
    total = view["question"]["total"]
    assert total == 10 and view["question"]["position"] == 1
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        bank = list(
            await session.scalars(
                select(Question)
                .where(Question.specialization_id == "python-backend")
                .order_by(Question.position)
            )
        )
    secrets = {q.expected_answer for q in bank} | {q.alternative for q in bank}
    secrets |= {q.code["solution"] for q in bank if q.code}
    seen_slugs = []
    for position in range(1, total + 1):
        if position > 1:
            status, view = await api(
                client, token, f"/api/interviews/{interview_id}/question", {"position": position}
            )
            assert status == 200
        question = view["question"]
        assert f"{question['position']}/{question['total']}" == f"{position}/{total}"
        assert question["expected_answer"] and question["alternative"] and question["key_points"]
        seen_slugs.append(question["slug"])
        event = await next_of(candidate_ws, "event")
        assert event["name"] == "stage"
        shown = {"position": position, "total": total, "text": question["text"]}
        if question["code"]:  # a coding question: the visible tests, no solution
            shown["code"] = {k: question["code"][k] for k in ("language", "function", "tests")}
        assert event["data"] == {"state": "technical", "question": shown, "scratch": None}
        stage = await (await candidate.get(f"{link}/stage")).json()
        assert stage["question"]["text"] == question["text"]
        raw = str(event) + str(stage)
        assert not any(secret in raw for secret in secrets)
        assert "'solution'" not in raw and "'hidden_tests'" not in raw
    assert seen_slugs == [q.slug for q in bank[:total]]  # the bank's order is kept

    # Back one, then forward again; beyond the last is refused and changes nothing.
    status, view = await api(
        client, token, f"/api/interviews/{interview_id}/question", {"position": total - 1}
    )
    assert status == 200 and view["question"]["position"] == total - 1
    status, body = await api(
        client, token, f"/api/interviews/{interview_id}/question", {"position": total + 1}
    )
    assert (
        status == 422
        and body["error"] == f"There is no question {total + 1}: this interview has {total}."
    )
    status, body = await api(client, token, f"/api/interviews/{interview_id}/finish", {})
    assert status == 422 and "after the last question" in body["error"]
    await api(client, token, f"/api/interviews/{interview_id}/question", {"position": total})
    # A second "Start technical part" is an illegal transition.
    status, body = await api(client, token, f"/api/interviews/{interview_id}/technical", {})
    assert (
        status == 409
        and body["error"]
        == "Cannot start the technical part: the interview is already in the technical stage."
    )
    status, view = await api(client, token, f"/api/interviews/{interview_id}/finish", {})
    assert status == 200 and view["state"] == "finishing" and view["question"] is None

    # Every move is on the timeline with its time.
    async with make_sessionmaker(engine)() as session:
        events = list(
            await session.scalars(
                select(InterviewEvent)
                .where(InterviewEvent.interview_id == interview_id)
                .order_by(InterviewEvent.id)
            )
        )
    await engine.dispose()
    kinds = [
        (e.kind, e.data.get("to") or e.data.get("position"))
        for e in events
        if e.kind in ("state", "question")
    ]
    assert kinds[:3] == [("state", "plan"), ("state", "technical"), ("question", 1)]
    assert kinds[-1] == ("state", "finishing")
    assert all(a.at <= b.at for a, b in zip(events, events[1:], strict=False))


async def test_the_red_phone_ends_it_and_nothing_moves_after(
    client, make_client, mailbox: Mailbox
) -> None:
    interview_id, link, token, candidate = await started_interview(client, make_client, mailbox)
    response = await client.post(f"/interviews/{interview_id}/end", headers={"X-CSRF-Token": token})
    assert response.status == 200
    assert (await response.json())["results_url"] == f"/interviews/{interview_id}/results"
    for path, body in [("/technical", {}), ("/question", {"position": 2}), ("/finish", {})]:
        status, payload = await api(client, token, f"/api/interviews/{interview_id}{path}", body)
        assert status == 409 and "already ended" in payload["error"], path
    response = await client.post(f"/interviews/{interview_id}/end", headers={"X-CSRF-Token": token})
    assert response.status == 409
    # The candidate's link now says the interview has ended.
    page = await candidate.get(link)
    assert page.status == 410 and "This interview has ended" in await page.text()
    # The recruiter's page goes to the results.
    response = await client.get(f"/interviews/{interview_id}")
    assert str(response.url).endswith(f"/interviews/{interview_id}/results")
    assert "Interview results" in await response.text()


async def test_notes_are_saved_and_come_back(client, make_client, mailbox: Mailbox) -> None:
    interview_id, _, token, _ = await started_interview(client, make_client, mailbox)
    status, body = await api(
        client,
        token,
        f"/api/interviews/{interview_id}/notes",
        {"text": "Strong on SQL.\nAsk about Kafka."},
    )
    assert status == 200 and body["length"] == len("Strong on SQL.\nAsk about Kafka.")
    _, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    assert view["notes"] == "Strong on SQL.\nAsk about Kafka."
    # sendBeacon form posts work as the page closes.
    response = await client.post(
        f"/api/interviews/{interview_id}/notes", data={"text": "Final words", "csrf_token": token}
    )
    assert response.status == 200
    _, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    assert view["notes"] == "Final words"
    status, body = await api(
        client, token, f"/api/interviews/{interview_id}/notes", {"text": "x" * 100_001}
    )
    assert status == 422 and "limited" in body["error"]
    _, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    assert view["notes"] == "Final words"  # nothing lost
    status, _ = await api(client, token, f"/api/interviews/{interview_id}/notes", {"text": 5})
    assert status == 422


async def test_another_recruiter_cannot_touch_the_interview(
    client, make_client, mailbox: Mailbox
) -> None:
    interview_id, _, _, _ = await started_interview(client, make_client, mailbox)
    other = await make_client()
    await register(other, mailbox, "other@example.com")
    token = await csrf_of(other, "/interviews")
    for path, body in [
        ("/stage", None),
        ("/technical", {}),
        ("/notes", {"text": "hi"}),
        ("/topics/1", {"checked": True}),
    ]:
        status, _ = await api(other, token, f"/api/interviews/{interview_id}{path}", body)
        assert status == 404, path
    response = await other.post(f"/interviews/{interview_id}/end", headers={"X-CSRF-Token": token})
    assert response.status == 404
    response = await other.get(f"/interviews/{interview_id}/results")
    assert response.status == 404


async def test_question_count_is_chosen_at_setup(client, mailbox: Mailbox) -> None:
    from tests.helpers import choose_specialization, fill_candidate, fill_details

    await register(client, mailbox, "count@example.com")
    await choose_specialization(client)
    await fill_details(client)
    await fill_candidate(client)
    token = await csrf_of(client, "/setup/mode")
    for bad in ["0", "500", "ten"]:
        response = await client.post(
            "/setup/mode", data={"mode": "now", "question_count": bad, "csrf_token": token}
        )
        assert response.status == 422 and "technical questions" in await response.text()
    response = await client.post(
        "/setup/mode", data={"mode": "now", "question_count": "3", "csrf_token": token}
    )
    interview_id = int(str(response.url).rsplit("/", 1)[1])
    status, view = await api(client, token, f"/api/interviews/{interview_id}/stage")
    assert status == 200 and view["question_count"] == 3


async def test_every_json_error_has_one_shape_with_text_for_people(client) -> None:
    """A signed-out stage request says what to do, in the same `error` field as every other
    JSON error (it used to say only "Unauthorized")."""
    response = await client.get("/api/interviews/1/stage", headers={"Accept": "application/json"})
    assert response.status == 401
    assert await response.json() == {"error": "Sign in again to continue."}
    response = await client.get("/api/interviews/1/nothing-here")
    assert response.status == 404
    body = await response.json()
    assert set(body) == {"error"} and "does not exist" in body["error"]
