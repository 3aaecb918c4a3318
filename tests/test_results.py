"""Reviewing results: the page, JSON export, playback with range requests, overrides, deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from media.oggopus import OggOpusWriter
from rooms import conduct
from rooms.db import make_engine, make_sessionmaker
from rooms.interviews import transition
from rooms.models import Answer, Interview, Recording, Score
from rooms.recordings import start_segment, update_segment
from rooms.states import InterviewState
from tests.conftest import Mailbox, csrf_of
from tests.helpers import create_interview_now, register


async def finished_interview(client, mailbox: Mailbox, settings) -> int:  # type: ignore[no-untyped-def]
    """An interview that went through: question 1 answered and scored, a candidate recording."""
    await register(client, mailbox, "review@example.com")
    interview_id, _ = await create_interview_now(client)
    engine = make_engine(settings.database_url)
    start = datetime.now(UTC) - timedelta(minutes=5)
    async with make_sessionmaker(engine).begin() as session:
        interview = await conduct.load(session, interview_id)
        await transition(session, interview, InterviewState.PLAN, now=start)
        await conduct.start_technical(session, interview)
        await conduct.save_answer(
            session,
            interview_id,
            1,
            "A generator yields values lazily.",
            [
                {
                    "start": start.timestamp() + 1.0,
                    "end": start.timestamp() + 2.5,
                    "text": "A generator yields values lazily.",
                }
            ],
            start,
            start + timedelta(seconds=3),
            "faster-whisper",
        )
        await conduct.save_score(
            session,
            interview_id,
            1,
            6.5,
            "Covers 2 of 4 key points.",
            ["a"],
            ["b"],
            "",
            "local",
            "",
        )
        await conduct.save_notes(session, interview, "Solid basics.")
        path = settings.recordings_dir / f"interview-{interview_id}" / "candidate-000.opus"
        writer = OggOpusWriter(path, serial=7)
        writer.write_gap(48000 * 3)
        writer.close()
        recording = await start_segment(
            session,
            interview_id,
            "candidate",
            f"interview-{interview_id}/candidate-000.opus",
            start,
        )
        await update_segment(session, recording.id, 3.0, start + timedelta(seconds=3))
        interview = await session.get(Interview, interview_id)
        await transition(session, interview, InterviewState.COMPLETED)
    await engine.dispose()
    return interview_id


async def test_results_page_shows_the_whole_record(client, mailbox: Mailbox, settings) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    response = await client.get(f"/interviews/{interview_id}/results")
    body = await response.text()
    assert response.status == 200
    for text in [
        "Carl Candidate",
        "Rita Recruiter",
        "Python backend",
        "A generator yields values lazily.",
        "Covers 2 of 4 key points.",
        "6.5/10",
        "Solid basics.",
        "Topics covered",
        "<audio",
    ]:
        assert text in body, text
    exported = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    assert exported["overall_score"] == 6.5
    assert exported["questions"][0]["transcript"] == "A generator yields values lazily."
    assert exported["questions"][0]["score"]["ai"] == 6.5
    assert exported["recordings"][0]["role"] == "candidate"


async def test_recordings_are_served_with_range_requests(
    client, mailbox: Mailbox, settings
) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    exported = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    url = f"/interviews/{interview_id}/recordings/{exported['recordings'][0]['id']}"
    whole = await client.get(url)
    data = await whole.read()
    assert whole.status == 200 and data[:4] == b"OggS" and whole.headers["Accept-Ranges"] == "bytes"
    part = await client.get(url, headers={"Range": "bytes=10-29"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 10-29/{len(data)}"
    assert await part.read() == data[10:30]
    bad = await client.get(url, headers={"Range": f"bytes={len(data) + 100}-"})
    assert bad.status == 416


async def test_recruiter_overrides_a_score_and_the_ai_score_is_kept(
    client, mailbox: Mailbox, settings
) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    token = await csrf_of(client, f"/interviews/{interview_id}/results")
    response = await client.post(
        f"/api/interviews/{interview_id}/scores/1",
        json={"override": 8},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 200 and await response.json() == {
        "position": 1,
        "ai": 6.5,
        "override": 8,
    }
    exported = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    assert exported["overall_score"] == 8 and exported["questions"][0]["score"]["ai"] == 6.5
    for bad in [11, -1, "eight", True]:
        response = await client.post(
            f"/api/interviews/{interview_id}/scores/1",
            json={"override": bad},
            headers={"X-CSRF-Token": token},
        )
        assert response.status == 422
    response = await client.post(
        f"/api/interviews/{interview_id}/scores/99",
        json={"override": 5},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 404


async def test_only_the_owner_sees_any_of_it(
    client, make_client, mailbox: Mailbox, settings
) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    exported = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    other = await make_client()
    await register(other, mailbox, "nosy@example.com")
    token = await csrf_of(other, "/interviews")
    urls = [
        ("GET", f"/interviews/{interview_id}/results"),
        ("GET", f"/api/interviews/{interview_id}/result"),
        ("GET", f"/interviews/{interview_id}/recordings/{exported['recordings'][0]['id']}"),
    ]
    for method, url in urls:
        assert (await other.request(method, url)).status == 404, url
    response = await other.post(
        f"/api/interviews/{interview_id}/scores/1",
        json={"override": 1},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 404
    response = await other.post(f"/interviews/{interview_id}/delete", data={"csrf_token": token})
    assert response.status == 404


async def test_deleting_removes_files_and_rows(client, mailbox: Mailbox, settings) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    folder = settings.recordings_dir / f"interview-{interview_id}"
    assert folder.exists()
    token = await csrf_of(client, f"/interviews/{interview_id}/results")
    response = await client.post(f"/interviews/{interview_id}/delete", data={"csrf_token": token})
    assert response.status == 200 and str(response.url).endswith("/interviews")
    assert not folder.exists()
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        for model in (Interview, Answer, Score, Recording):
            count = await session.scalar(select(func.count()).select_from(model))
            assert count == 0, model
    await engine.dispose()
    assert (await client.get(f"/interviews/{interview_id}/results")).status == 404


async def test_dashboard_lists_scores_and_filters(client, mailbox: Mailbox, settings) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    await create_interview_now(client, name="Dana Other", email="dana@example.com")
    listing = await (await client.get("/interviews")).text()
    assert "Carl Candidate" in listing and "Dana Other" in listing and "6.5/10" in listing
    assert f'href="/interviews/{interview_id}/results"' in listing
    found = await (await client.get("/interviews?q=dana")).text()
    assert "Dana Other" in found and "Carl Candidate" not in found
    done = await (await client.get("/interviews?state=completed")).text()
    assert "Carl Candidate" in done and "Dana Other" not in done
    none = await (await client.get("/interviews?q=%25%27%22<x>")).text()
    assert "No interviews match." in none


async def test_retention_deletes_old_recordings_and_keeps_transcripts(
    client, mailbox: Mailbox, settings
) -> None:
    from media.storage import LocalStorage
    from pipeline.retention import purge_recordings

    interview_id = await finished_interview(client, mailbox, settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    storage = LocalStorage(settings.recordings_dir)
    assert await purge_recordings(sessions, storage, days=1) == 0  # 5 minutes old: kept
    async with sessions.begin() as session:
        for recording in await session.scalars(select(Recording)):
            recording.started_at = datetime.now(UTC) - timedelta(days=31)
    assert await purge_recordings(sessions, storage, days=30) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Recording)) == 0
        assert await session.scalar(select(func.count()).select_from(Answer)) == 1
    await engine.dispose()
    assert not list((settings.recordings_dir / f"interview-{interview_id}").glob("*.opus"))


async def test_pdf_report_downloads_even_with_cyrillic_names(
    client, mailbox: Mailbox, settings
) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine).begin() as session:
        interview = await session.get(Interview, interview_id)
        interview.candidate_name = "Карл Кандидатов"
    await engine.dispose()
    response = await client.get(f"/interviews/{interview_id}/report.pdf")
    body = await response.read()
    assert response.status == 200 and response.content_type == "application/pdf"
    assert body.startswith(b"%PDF-") and len(body) > 2000
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="interview-{interview_id}.pdf"'
    )


async def test_final_verdict_is_saved_and_shown(client, mailbox: Mailbox, settings) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    token = await csrf_of(client, f"/interviews/{interview_id}/results")
    response = await client.post(
        f"/interviews/{interview_id}/verdict",
        data={"verdict": "hire", "verdict_note": "Strong fundamentals.", "csrf_token": token},
    )
    body = await response.text()
    assert response.status == 200 and "<strong>Hire</strong>: Strong fundamentals." in body
    exported = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    assert exported["verdict"] == "hire" and exported["verdict_note"] == "Strong fundamentals."
    response = await client.post(
        f"/interviews/{interview_id}/verdict", data={"verdict": "promote", "csrf_token": token}
    )
    assert response.status == 422 and "Choose Hire, Maybe or No hire." in await response.text()
