"""In Chromium: with Redis and no worker taking speech jobs, the recruiter's page says that the
AI assistant is paused, in the product's words; the results page shows a pending answer as being
transcribed and updates itself once the answer is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from rooms import conduct
from rooms.db import make_engine, make_sessionmaker
from rooms.interviews import transition
from rooms.states import InterviewState
from tests.browser import CHROMIUM, chromium_args, recruiter_page, speech_wav
from tests.conftest import ARTIFACTS, ServerProcess, start_server
from tests.seed import Seeded, seed_interview

pytestmark = pytest.mark.browser

LATE_ANSWER = "A generator yields values lazily and keeps its state between calls."


def to_technical_part(url: str, interview_id: int) -> None:
    async def advance() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine).begin() as session:
            interview = await conduct.load(session, interview_id)
            if interview.state == InterviewState.WAITING:
                await transition(session, interview, InterviewState.PLAN)
            await conduct.start_technical(session, interview)
        await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, advance()).result()


@contextmanager
def technical_part(
    db: str, redis_url: str, tmp_path: Path, name: str
) -> Iterator[tuple[ServerProcess, Seeded, Page]]:
    """A server with Redis and no worker, and the recruiter's page at question 1 of 10."""
    server = start_server(
        {
            "DATABASE_URL": db,
            "REDIS_URL": redis_url,
            "INLINE_WORKER": "false",
            "DATA_DIR": str(tmp_path / "var"),
            "SECRET_KEY": f"{name}-test",
        },
        tmp_path / "server.log",
    )
    try:
        seeded = seed_interview(db, email=f"{name}@example.com")
        to_technical_part(db, seeded.interview_id)
        wav = speech_wav(tmp_path / "speech.wav", "Hello.")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
            )
            page = recruiter_page(
                browser, server.url, seeded.email, seeded.password, seeded.interview_id
            )
            expect(page.locator("#question-counter")).to_contain_text("Question: 1/10")
            yield server, seeded, page
            browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


def store_answer(url: str, interview_id: int, text: str, engine_name: str) -> None:
    """What the answer job does (an empty engine name marks the answer pending)."""

    async def save() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine).begin() as session:
            now = datetime.now(UTC)
            await conduct.save_answer(session, interview_id, 1, text, [], now, now, engine_name)
        await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, save()).result()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_recruiter_sees_that_the_assistant_is_paused(
    db: str, redis_url: str, tmp_path: Path
) -> None:
    with technical_part(db, redis_url, tmp_path, "paused") as (server, seeded, page):
        notice = page.locator("#assistant-notice")
        expect(notice).to_contain_text(
            "The AI assistant is paused: no transcription worker is running."
        )
        shots = ARTIFACTS / "assistant"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "paused.png"), full_page=True)

        # The recruiter moved on with the job still queued: the results page says so, then
        # shows the transcript by itself once the job has stored it.
        store_answer(db, seeded.interview_id, "", "")
        page.goto(f"{server.url}/interviews/{seeded.interview_id}/results")
        pending = page.locator("#q-1 .pending-transcript")
        expect(pending).to_have_text("Being transcribed… this page updates when it is done.")
        page.screenshot(path=str(shots / "results-pending.png"), full_page=True)
        store_answer(db, seeded.interview_id, LATE_ANSWER, "faster-whisper")
        expect(page.locator("#q-1")).to_contain_text(LATE_ANSWER, timeout=10_000)
        expect(pending).to_have_count(0)


def run_answer_job(url: str, redis_url: str, interview_id: int, text: str) -> str:
    """What a worker does with the answer to question 1 once the recruiter moved on (the
    transcript already known): stores it, scores it with the local scorer, and tells the page
    over Redis. Returns the question's slug."""
    import redis.asyncio as aioredis
    from sqlalchemy import select

    from bus.pubsub import RedisBus
    from jobs.queue import Job, JobKind
    from pipeline.factories import make_work
    from rooms.models import InterviewQuestion, Question
    from service.settings import Settings

    async def run() -> str:
        engine = make_engine(url)
        client = aioredis.from_url(redis_url)
        bus = RedisBus(client)
        sessions = make_sessionmaker(engine)
        work = make_work(Settings(database_url=url), sessions, bus)
        now = datetime.now(UTC).timestamp()
        body = {
            "interview": interview_id,
            "position": 1,
            "started_at": now - 20,
            "at": now,
            "pieces": [{"start": now - 20, "end": now - 1, "text": text}],
        }
        try:
            await work(Job("misconception", JobKind.ANSWER, body))
            async with sessions() as session:
                return str(
                    await session.scalar(
                        select(Question.slug)
                        .join(InterviewQuestion, InterviewQuestion.question_id == Question.id)
                        .where(
                            InterviewQuestion.interview_id == interview_id,
                            InterviewQuestion.position == 1,
                        )
                    )
                )
        finally:
            work.close()
            await bus.close()
            await client.aclose()
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_misconception_is_flagged_live_and_on_the_results_page(
    db: str, redis_url: str, tmp_path: Path
) -> None:
    """The candidate asserted one of the question's common misconceptions: the live score
    names it, with the score's confidence, and so does the results page."""
    from rooms.bank import bundled_banks

    first = next(b for b in bundled_banks() if b.id == "python-backend").questions[0]
    misconception = first.misconceptions[0]
    answer = f"So I'm fairly sure about this one. {misconception} That's how it works."
    with technical_part(db, redis_url, tmp_path, "misconception") as (server, seeded, page):
        page.get_by_role("button", name="Next question").click()
        expect(page.locator("#question-counter")).to_contain_text("Question: 2/10")
        slug = run_answer_job(db, redis_url, seeded.interview_id, answer)
        assert slug == first.slug
        live = page.locator("#score-1")
        expect(live).to_contain_text("Misconception:", timeout=20_000)
        expect(live).to_contain_text(misconception)
        expect(live.locator(".confidence")).to_contain_text("confidence")
        shots = ARTIFACTS / "assistant"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "misconception-live.png"), full_page=True)
        page.goto(f"{server.url}/interviews/{seeded.interview_id}/results")
        expect(page.locator("#q-1 ul.misconceptions")).to_contain_text(misconception)
        page.screenshot(path=str(shots / "misconception-results.png"), full_page=True)
