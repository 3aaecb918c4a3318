"""Languages in real headless Chromium: the switcher remembers the choice, the candidate of a
Russian interview gets a Russian page (server texts and the JS equipment check alike), and a
whole interview runs in Russian with a Russian voice."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, expect

from rooms.bank import bundled_banks_in, import_banks
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Interview
from tests.browser import chromium_saying, speech_wav
from tests.conftest import ARTIFACTS, ROOT, ServerProcess, start_server
from tests.rtc import festival_ru
from tests.seed import Seeded, seed_interview

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


def russian_interview(db: str, request: pytest.FixtureRequest) -> tuple[Path, Seeded]:
    """The screenshots' folder of this test, and a Russian interview (the Russian banks loaded)."""
    shots = ARTIFACTS / "i18n" / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)
    russian(db)
    seeded = seed_interview(db, specialization="ru-python-backend")
    russian(db, seeded.interview_id)
    return shots, seeded


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
    shots, seeded = russian_interview(db, request)

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


CATALOGUE = read_po((ROOT / "web/locale/ru/LC_MESSAGES/messages.po").open("rb"))


def ru(english: str, **values: object) -> str:
    """The Russian text the catalogue gives for an English one (what a Russian page shows)."""
    message = CATALOGUE.get(english)
    assert message is not None and message.string, english
    text = str(message.string)
    return text.format(**values) if values else text


CYRILLIC = re.compile(r"[а-яё]{4,}", re.IGNORECASE)


SAID_RU = (
    "Оператор сравнения проверяет, равны ли значения, а оператор тождества проверяет, что "
    "это один и тот же объект в памяти."
)
"""A Russian answer to the first question of the Russian Python bank, in Cyrillic only
(festvox-ru reads no Latin words or symbols)."""


@pytest.fixture
def russian_voice(tmp_path: Path) -> Iterator[Browser]:
    """Chromium whose microphone says SAID_RU in festival's festvox-ru voice."""
    with chromium_saying(festival_ru(tmp_path / "answer-ru.wav", SAID_RU)) as browser:
        yield browser


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_whole_interview_in_russian(
    server: ServerProcess, russian_voice: Browser, db: str, request: pytest.FixtureRequest
) -> None:
    """The guide in Russian: a recruiter whose browser prefers Russian, a candidate of a
    Russian interview speaking Russian; the live transcript, the score and the results page
    are Russian."""
    shots, seeded = russian_interview(db, request)

    recruiter = russian_voice.new_context(locale="ru-RU").new_page()
    recruiter.set_default_timeout(15_000)
    recruiter.goto(f"{server.url}/signin?next=/interviews/{seeded.interview_id}")
    recruiter.get_by_label(ru("Email")).fill(seeded.email)
    recruiter.get_by_label(ru("Password")).fill(seeded.password)
    recruiter.get_by_role("button", name=ru("Sign in"), exact=True).click()
    candidate = russian_voice.new_context(locale="ru-RU").new_page()
    candidate.set_default_timeout(15_000)
    candidate.goto(f"{server.url}/i/{seeded.token}")
    for box in candidate.locator(".consents input[type=checkbox]").all():
        box.check()
    candidate.get_by_role("button", name=ru("Join")).click()

    recruiter.get_by_role("button", name=ru("Start interview")).click()
    expect(recruiter.get_by_role("heading", name=ru("Interview plan"))).to_be_visible()
    expect(recruiter.locator("#recording-indicator")).to_be_visible(timeout=30_000)
    recruiter.get_by_role("button", name=ru("Start technical part")).click()
    counter = ru("Question: {position}/{total}", position=1, total=10)
    expect(recruiter.locator("#question-counter")).to_contain_text(counter)
    expect(candidate.locator("#question-counter")).to_have_text(counter)
    question = recruiter.locator("#question-text").inner_text()
    assert CYRILLIC.search(question), question
    expect(candidate.locator("#question-text")).to_have_text(question)
    # The fake microphone keeps saying the answer: Whisper base, told the language, writes it
    # in Russian as it is spoken (slow on 2 busy cores: a generous deadline).
    expect(recruiter.locator("#live-transcript")).to_have_text(CYRILLIC, timeout=120_000)
    time.sleep(8)  # an answer of some length
    recruiter.get_by_role("button", name=ru("Next question")).click()
    expect(recruiter.locator("#score-1")).to_contain_text("Q1:", timeout=120_000)
    recruiter.screenshot(path=str(shots / "technical-ru.png"), full_page=True)

    recruiter.locator("#hang-up").click()
    recruiter.locator("#confirm-end-yes").click()
    expect(candidate.get_by_role("heading", name=ru("The interview has ended"))).to_be_visible()
    recruiter.goto(f"{server.url}/interviews/{seeded.interview_id}/results")
    expect(recruiter.get_by_role("heading", name=ru("Interview results"))).to_be_visible()
    expect(recruiter.locator(".pending-transcript")).to_have_count(0, timeout=120_000)
    expect(recruiter.locator("#q-1 .transcript")).to_have_text(CYRILLIC)
    expect(recruiter.locator("#q-1")).to_contain_text("Оценка ИИ:")
    recruiter.screenshot(path=str(shots / "results-ru.png"), full_page=True)
