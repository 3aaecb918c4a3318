"""Part 1 in real headless Chromium: a new recruiter sets up an interview, the candidate joins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser import CHROMIUM, chromium_args, speech_wav, wait_until
from tests.conftest import ARTIFACTS, Mailbox, ServerProcess, start_server

pytestmark = pytest.mark.browser


@pytest.fixture
def server(db: str, tmp_path: Path, smtp: tuple[Mailbox, int]) -> Iterator[ServerProcess]:
    process = start_server(
        {
            "DATABASE_URL": db,
            "DATA_DIR": str(tmp_path / "var"),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp[1]),
            "SECRET_KEY": "browser-test",
        },
        tmp_path / "server.log",
    )
    yield process
    process.process.terminate()
    process.process.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    wav = speech_wav(tmp_path / "speech.wav", "Hello, I am ready for the interview.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
        )
        yield browser
        browser.close()


def shot(page: Page, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_new_recruiter_sets_up_an_interview_and_sees_the_candidate_arrive(
    server: ServerProcess, browser, smtp: tuple[Mailbox, int], request: pytest.FixtureRequest
) -> None:
    mailbox = smtp[0]
    shots = ARTIFACTS / "setup" / request.node.callspec.id
    recruiter = browser.new_context(
        permissions=["camera", "microphone", "clipboard-read", "clipboard-write"]
    )
    page = recruiter.new_page()
    page.set_default_timeout(15_000)

    page.goto(server.url)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    shot(page, shots, "01-welcome")
    page.get_by_role("link", name="Start assessment").click()

    expect(
        page.get_by_role("heading", name="Choose the interview technology or specialization")
    ).to_be_visible()
    page.get_by_text("Python backend", exact=True).click()
    shot(page, shots, "02-specialization")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, shots, "03-sign-in")
    page.get_by_role("link", name="Register with my email").click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shot(page, shots, "04-check-email")

    message = mailbox.wait_for("newcomer@example.com")
    assert message["Subject"] == "Access to your test interview on p2p-interview"
    link = mailbox.link_in(message)
    page.goto(server.url + urlsplit(link).path)
    expect(page.get_by_role("heading", name="Create a password")).to_be_visible()
    page.get_by_label("Password (at least 10 characters)").fill("a long pass phrase")
    page.get_by_label("Repeat the password").fill("a long pass phrase")
    shot(page, shots, "05-create-password")
    page.get_by_role("button", name="Save password and sign in").click()

    expect(page.get_by_role("heading", name="Enter your details")).to_be_visible()
    page.get_by_label("Interviewer name").fill("Rita Recruiter")
    page.get_by_label("Interviewer email").fill("rita@example.com")
    # Next without the consents is refused by the server (the form has novalidate).
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("This consent is required to continue.").first).to_be_visible()
    page.get_by_label("I agree to the processing of personal data according to the").check()
    page.get_by_label(
        "I agree to the analysis of answers by the artificial intelligence system"
    ).check()
    shot(page, shots, "06-your-details")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_role("heading", name="Enter candidate details")).to_be_visible()
    page.get_by_label("Candidate name").fill("Carl Candidate")
    page.get_by_label("Candidate email").fill("carl@example.com")
    shot(page, shots, "07-candidate-details")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_text("Conduct the interview right now")).to_be_visible()
    expect(page.get_by_label("Date", exact=True)).to_be_hidden()
    page.get_by_text("Conduct the interview later").click()
    expect(page.get_by_label("Date", exact=True)).to_be_visible()
    assert page.get_by_label("Time zone").input_value() != ""
    page.get_by_text("Conduct the interview right now").click()
    shot(page, shots, "08-mode")
    page.get_by_role("button", name="Confirm").click()

    status = page.locator("#candidate-status")
    expect(status).to_have_text("Candidate Carl Candidate has not joined yet")
    start = page.locator("#start-button")
    expect(start).to_be_disabled()
    candidate_link = page.locator("#candidate-link").input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/i/[A-Za-z0-9_-]{{43}}", candidate_link)
    # A click before the page's scripts have run does nothing (a loaded machine can take a
    # while): click again until the page says it copied, a few times at most.
    feedback = page.locator(".copy-feedback")
    for _ in range(5):
        page.get_by_role("button", name="Copy").click()
        try:
            expect(feedback).to_have_text("Link copied to the clipboard.", timeout=5_000)
            break
        except AssertionError:
            continue
    expect(feedback).to_have_text("Link copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == candidate_link
    shot(page, shots, "09-waiting-not-joined")

    candidate = browser.new_context()
    cpage = candidate.new_page()
    cpage.set_default_timeout(15_000)
    cpage.goto(candidate_link)
    expect(cpage.get_by_role("heading", name="Hello, Carl Candidate")).to_be_visible()
    expect(cpage.get_by_text("Python backend")).to_be_visible()
    expect(cpage.locator("#device-status")).to_have_text("Your camera and microphone work.")
    # The fake camera plays into the preview, and the devices are listed.
    wait_until(cpage, "document.getElementById('preview').videoWidth > 0")
    assert cpage.locator("#camera-select option").count() >= 1
    assert cpage.locator("#microphone-select option").count() >= 1
    # The fake microphone's speech moves the level meter.
    wait_until(cpage, "document.getElementById('mic-level').value > 0.02")
    join = cpage.get_by_role("button", name="Join")
    expect(join).to_be_disabled()  # consents not given yet
    cpage.get_by_label("I agree to the recording of this interview's audio").check()
    cpage.get_by_label(
        "I agree to the analysis of my answers by the artificial intelligence system"
    ).check()
    shot(cpage, shots, "10-candidate-equipment-check")
    join.click()
    expect(cpage.locator("#join-status")).to_contain_text("You have joined.")
    shot(cpage, shots, "11-candidate-joined")

    # The recruiter's page changes without a reload.
    expect(status).to_have_text("Candidate Carl Candidate is ready and waiting")
    expect(start).to_have_text("Start interview")
    expect(start).to_be_enabled()
    shot(page, shots, "12-waiting-ready")
    # And is right after a reload.
    page.reload()
    expect(page.locator("#candidate-status")).to_have_text(
        "Candidate Carl Candidate is ready and waiting"
    )
    page.get_by_role("button", name="Start interview").click()
    expect(page.get_by_role("heading", name="Interview plan")).to_be_visible()
    shot(page, shots, "13-interview-plan")
    recruiter.close()
    candidate.close()


def test_candidate_without_permission_gets_a_clear_message(
    server: ServerProcess, browser, smtp: tuple[Mailbox, int], db: str
) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from rooms.consents import ConsentKind
    from rooms.db import make_engine, make_sessionmaker
    from rooms.interviews import Person, create_interview
    from rooms.models import Recruiter, utcnow

    async def make() -> str:
        engine = make_engine(db)
        async with make_sessionmaker(engine).begin() as session:
            recruiter = Recruiter(email="perm@example.com")
            session.add(recruiter)
            await session.flush()
            interview = await create_interview(
                session,
                recruiter,
                "frontend",
                Person("Rita", "rita@example.com"),
                Person("Dana", "dana@example.com"),
                {ConsentKind.PERSONAL_DATA: utcnow(), ConsentKind.AI_ANALYSIS: utcnow()},
                "test",
            )
            token = interview.candidate_token
        await engine.dispose()
        return token

    # Playwright's sync API runs its own loop in this thread: use another one for the database.
    with ThreadPoolExecutor(1) as pool:
        token = pool.submit(asyncio.run, make()).result()
    # No camera/microphone permission granted and no fake-UI auto-accept for this context.
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));"
    )
    page.goto(f"{server.url}/i/{token}")
    expect(page.locator("#device-status")).to_contain_text(
        "The browser blocked the camera and microphone"
    )
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    expect(page.get_by_role("button", name="Join")).to_be_disabled()
    context.close()
