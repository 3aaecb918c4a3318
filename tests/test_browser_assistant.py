"""In Chromium: with Redis and no worker taking speech jobs, the recruiter's page says that the
AI assistant is paused, in the product's words."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from rooms import conduct
from rooms.db import make_engine, make_sessionmaker
from rooms.interviews import transition
from rooms.states import InterviewState
from tests.browser import CHROMIUM, chromium_args, recruiter_page, speech_wav
from tests.conftest import ARTIFACTS, start_server
from tests.seed import seed_interview

pytestmark = pytest.mark.browser


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


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_recruiter_sees_that_the_assistant_is_paused(
    db: str, redis_url: str, tmp_path: Path
) -> None:
    server = start_server(
        {
            "DATABASE_URL": db,
            "REDIS_URL": redis_url,
            "INLINE_WORKER": "false",
            "DATA_DIR": str(tmp_path / "var"),
            "SECRET_KEY": "assistant-test",
        },
        tmp_path / "server.log",
    )
    try:
        seeded = seed_interview(db, email="paused@example.com")
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
            notice = page.locator("#assistant-notice")
            expect(notice).to_contain_text(
                "The AI assistant is paused: no transcription worker is running."
            )
            shots = ARTIFACTS / "assistant"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "paused.png"), full_page=True)
            browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
