"""The call in real headless Chromium: audio and video flow both ways, and survive a reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser import (
    CHROMIUM,
    candidate_page,
    chromium_args,
    recruiter_page,
    speech_wav,
    wait_until,
)
from tests.conftest import ARTIFACTS, TEST_REDIS_URL, ServerProcess, start_server
from tests.seed import seed_interview

pytestmark = pytest.mark.browser


@pytest.fixture(params=["one-node", "two-nodes"])
def nodes(
    request: pytest.FixtureRequest, db: str, tmp_path: Path, redis_url: str
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The recruiter's node and the candidate's node (the same one, or two sharing Redis)."""
    env = {"DATABASE_URL": db, "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "call-test"}
    if request.param == "two-nodes":
        env["REDIS_URL"] = TEST_REDIS_URL
    first = start_server(env, tmp_path / "node-a.log")
    second = start_server(env, tmp_path / "node-b.log") if request.param == "two-nodes" else first
    yield first, second
    for node in {id(first): first, id(second): second}.values():
        node.process.terminate()
        node.process.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    wav = speech_wav(
        tmp_path / "speech.wav", "I would use a connection pool and keep transactions short."
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
        )
        yield browser
        browser.close()


def inbound(page: Page) -> dict[str, int]:
    return page.evaluate("window.p2pCall ? window.p2pCall.inboundBytes() : {audio: 0, video: 0}")


def wait_for_media(page: Page, timeout: float = 15) -> None:
    """Inbound audio and video bytes grow, and the remote video has a picture."""
    deadline = time.monotonic() + timeout
    first = inbound(page)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = inbound(page)
        if now["audio"] > first["audio"] > 0 and now["video"] > first["video"] > 0:
            break
        first = now if first["audio"] == 0 or first["video"] == 0 else first
    else:
        raise AssertionError(f"media did not flow: {inbound(page)}")
    wait_until(page, "document.getElementById('remote-video').videoWidth > 0", timeout)


def test_recruiter_and_candidate_meet_and_the_call_survives_a_reload(
    nodes: tuple[ServerProcess, ServerProcess],
    browser: Browser,
    db: str,
    request: pytest.FixtureRequest,
) -> None:
    recruiter_node, candidate_node = nodes
    seeded = seed_interview(db)
    shots = ARTIFACTS / "call" / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)

    recruiter = recruiter_page(
        browser, recruiter_node.url, seeded.email, seeded.password, seeded.interview_id
    )
    expect(recruiter.locator("#candidate-status")).to_have_text(
        "Candidate Carl Candidate has not joined yet"
    )

    candidate = candidate_page(browser, candidate_node.url, seeded.token)

    expect(recruiter.get_by_role("button", name="Start interview")).to_be_enabled()
    recruiter.get_by_role("button", name="Start interview").click()
    expect(recruiter.get_by_role("heading", name="Interview plan")).to_be_visible()

    expect(recruiter.locator("#call-state")).to_have_text("Connected")
    expect(candidate.locator("#call-state")).to_have_text("Connected")
    wait_for_media(recruiter)
    wait_for_media(candidate)
    recruiter.screenshot(path=str(shots / "recruiter-in-call.png"))
    candidate.screenshot(path=str(shots / "candidate-in-call.png"))

    # Mute and camera off are real toggles of the local tracks.
    recruiter.get_by_role("button", name="Mute microphone").click()
    expect(recruiter.get_by_role("button", name="Unmute microphone")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert (
        recruiter.evaluate(
            "document.getElementById('local-video').srcObject.getAudioTracks()[0].enabled"
        )
        is False
    )
    recruiter.get_by_role("button", name="Unmute microphone").click()

    # The candidate reloads: the recruiter sees it, and the call is back within 10 s.
    # (Every state the recruiter's page shows is noted: the gap can be shorter than a poll.)
    recruiter.evaluate(
        """() => {
          const box = document.getElementById("call-state");
          window.callStates = [];
          new MutationObserver(() => window.callStates.push(box.textContent.trim())).observe(
            box, { childList: true, characterData: true, subtree: true });
        }"""
    )
    started = time.monotonic()
    candidate.reload()
    expect(candidate.locator("#call-state")).to_have_text("Connected", timeout=10_000)
    expect(recruiter.locator("#call-state")).to_have_text("Connected", timeout=10_000)
    shown = recruiter.evaluate("() => window.callStates")
    assert any(state != "Connected" for state in shown), shown
    wait_for_media(candidate, timeout=10)
    wait_for_media(recruiter, timeout=10)
    back_after = time.monotonic() - started
    print(f"call back {back_after:.1f} s after the candidate's reload")
    assert back_after < 10

    # The recruiter ends the interview with the red phone icon.
    recruiter.get_by_role("button", name="End the interview").click()
    recruiter.get_by_role("button", name="End interview").click()
    modal = recruiter.locator("#completed-modal")
    expect(modal).to_have_text(
        "Interview completed. Thank you for your time. You can view the interview results here."
    )
    expect(candidate.get_by_role("heading", name="The interview has ended")).to_be_visible()
    recruiter.screenshot(path=str(shots / "completed-modal.png"))
    modal.get_by_role("link", name="here").click()
    expect(recruiter.get_by_role("heading", name="Interview results")).to_be_visible()
