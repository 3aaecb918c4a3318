"""Languages in real headless Chromium: the switcher remembers the choice, and the candidate of
a Russian interview gets a Russian page (server texts and the JS equipment check alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from rooms.bank import bundled_banks_in, import_banks
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Interview
from tests.browser import chromium_saying, speech_wav
from tests.conftest import ARTIFACTS, ServerProcess, start_server
from tests.seed import seed_interview

pytestmark = pytest.mark.browser


async def _russian(url: str, interview_id: int | None = None) -> None:
    """Load the Russian banks; make an interview Russian (as choosing Russian at setup does)."""
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as session:
        await import_banks(session, bundled_banks_in("ru"))
        if interview_id is not None:
            interview = await session.get(Interview, interview_id)
            assert interview is not None
            interview.language = "ru"
    await engine.dispose()


def russian(url: str, interview_id: int | None = None) -> None:
    with ThreadPoolExecutor(1) as pool:  # beside Playwright's own event loop
        pool.submit(asyncio.run, _russian(url, interview_id)).result()


@pytest.fixture
def server(db: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_server(
        {"DATABASE_URL": db, "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "i18n-test"},
        tmp_path / "server.log",
    )
    yield process
    process.process.terminate()
    process.process.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_saying(speech_wav(tmp_path / "speech.wav", "Hello, I am ready.")) as browser:
        yield browser


def test_switcher_and_a_russian_candidate_page(
    server: ServerProcess, browser: Browser, db: str, request: pytest.FixtureRequest
) -> None:
    shots = ARTIFACTS / "i18n" / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)
    russian(db)
    seeded = seed_interview(db, specialization="ru-python-backend")
    russian(db, seeded.interview_id)

    # A recruiter's English browser switches to Russian; the choice holds on the next page.
    page = browser.new_context(locale="en-US").new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    page.get_by_role("button", name="Русский").click()
    expect(page.get_by_role("heading", name="Добро пожаловать")).to_be_visible()
    page.screenshot(path=str(shots / "welcome-ru.png"), full_page=True)
    page.get_by_role("link", name="Политика конфиденциальности").click()
    expect(page.get_by_role("heading", name="Политика конфиденциальности")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Privacy Policy")).to_be_visible()

    # The candidate's English browser opens the Russian interview's link: Russian throughout.
    candidate = browser.new_context(locale="en-US").new_page()
    candidate.set_default_timeout(15_000)
    candidate.goto(f"{server.url}/i/{seeded.token}")
    expect(candidate.get_by_role("heading", name="Проверка оборудования")).to_be_visible()
    expect(candidate.locator("#device-status")).to_have_text("Камера и микрофон работают.")
    candidate.get_by_label("Я даю согласие на запись звука этого интервью").check()
    candidate.get_by_label("Я даю согласие на анализ моих ответов").check()
    candidate.get_by_role("button", name="Подключиться").click()
    expect(candidate.locator("#join-status")).to_have_text(
        "Вы подключились. Rita Recruiter скоро начнёт интервью."
    )
    candidate.screenshot(path=str(shots / "candidate-ru.png"), full_page=True)
