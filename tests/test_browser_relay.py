"""In Chromium on this machine, through a real coturn: with ICE_TRANSPORT_POLICY=relay both
pages make every connection (the call and each page's recording link) with the ICE servers and
policy of their joined message, and the call runs over relay candidates.

The candidate's page joins long before its call starts; its connections once came up with an
empty ICE server list (the joined message had been handled before the call existed), so a
candidate behind a network that needs the relay never got any media. The checks on the
candidate's page below are that bug's test. (No root needed: tests/test_netns_calls.py makes
the networks that need the relay.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import CHROMIUM, candidate_page, chromium_args, recruiter_page, speech_wav
from tests.conftest import start_server
from tests.network_calls import RECORDING_PAIR, SELECTED_PAIR
from tests.seed import seed_interview
from tests.test_browser_call import wait_for_media
from tests.turn import TurnServer

pytestmark = pytest.mark.browser

CONFIGURATIONS = """() => ({
  call: window.p2pCall.pc.getConfiguration(),
  recording: window.p2pRecording.pc.getConfiguration(),
})"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_relay_only_both_pages_use_the_turn_server(
    db: str, tmp_path: Path, turn_server: TurnServer
) -> None:
    env = {
        "DATABASE_URL": db,
        "DATA_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "relay-test",
        "ICE_SERVERS": json.dumps(turn_server.ice_servers(["udp"])),
        "TURN_SECRET": turn_server.secret,
        "ICE_TRANSPORT_POLICY": "relay",
    }
    server = start_server(env, tmp_path / "server.log")
    try:
        seeded = seed_interview(db)
        wav = speech_wav(tmp_path / "speech.wav", "Hello through the relay.")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
            )
            recruiter = recruiter_page(
                browser, server.url, seeded.email, seeded.password, seeded.interview_id
            )
            candidate = candidate_page(browser, server.url, seeded.token)
            # The check before Join found the relay (UDP) and the server's peer through it.
            expect(candidate.locator("#network-status")).to_have_text(
                "Your network is ready for the call.", timeout=30_000
            )
            expect(recruiter.locator("#candidate-network")).to_have_text(
                "Network check: Carl Candidate's network is ready for the call.", timeout=20_000
            )
            recruiter.get_by_role("button", name="Start interview").click()
            for page in (recruiter, candidate):
                expect(page.locator("#call-state")).to_have_text("Connected", timeout=30_000)
            for page in (candidate, recruiter):
                wait_for_media(page, timeout=30)
                expect(page.locator("#recording-indicator")).to_be_visible(timeout=30_000)
                configured = page.evaluate(CONFIGURATIONS)
                for which in ("call", "recording"):
                    assert configured[which]["iceTransportPolicy"] == "relay", (page.url, which)
                    [entry] = configured[which]["iceServers"]
                    assert entry["urls"] == turn_server.urls(["udp"]), entry
                    assert entry["username"] and entry["credential"], entry
                pair = page.evaluate(SELECTED_PAIR)
                assert pair["local"] == "relay" and pair["remote"] == "relay", pair
                recording = page.evaluate(RECORDING_PAIR)
                assert recording["local"] == "relay" and recording["remote"] == "relay"
            browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
    users = {line.split("user <", 1)[1].split(">", 1)[0] for line in turn_server.allocations()}
    assert any(user.endswith(":server") for user in users), users
    assert len(users) >= 3, users  # both pages and the server's peer
