"""Headless Chromium through Playwright, with a fake camera and a microphone that plays a WAV."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright's assertions wait 5 s by default; a page on a loaded 2-core machine (a test run
# beside others) can take longer to show what it says, so every assertion waits up to 15 s.
expect.set_options(timeout=15_000)


def speech_wav(path: Path, text: str) -> Path:
    """A spoken WAV made by espeak-ng, for the fake microphone."""
    if not path.exists():
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


def chromium_args(wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]


def wait_until(page, expression: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    """Poll a JS expression from here until it is truthy.

    Not page.wait_for_function: its polling evaluates strings in the page, which the service's
    Content-Security-Policy (no 'unsafe-eval') rightly blocks.
    """
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout} s: {expression}")


def recruiter_page(browser, base_url: str, email: str, password: str, interview_id: int):  # type: ignore[no-untyped-def]
    """A recruiter who signs in and lands in the interview's waiting room."""
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/signin?next=/interviews/{interview_id}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


def candidate_page(browser, base_url: str, token: str):  # type: ignore[no-untyped-def]
    """A candidate who opens the link, gives both consents and joins."""
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/i/{token}")
    page.get_by_label("I agree to the recording of this interview's audio").check()
    page.get_by_label(
        "I agree to the analysis of my answers by the artificial intelligence system"
    ).check()
    page.get_by_role("button", name="Join").click()
    return page


@contextmanager
def chromium_saying(wav: Path) -> Iterator[Browser]:
    """Headless Chromium whose fake microphone plays `wav`."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
        )
        yield browser
        browser.close()
