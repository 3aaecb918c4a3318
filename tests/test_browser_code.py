"""The shared code editor in real headless Chromium: recruiter and candidate type into one
document, it survives a reload and a server restart, the candidate runs code in their browser
(JavaScript in a Worker, Python in Pyodide), the recruiter sees the results and runs the hidden
tests, and the results page replays the code."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from rooms.db import make_engine, make_sessionmaker
from rooms.models import CodeEdit, CodeResult
from tests.browser import (
    candidate_page,
    chromium_saying,
    recruiter_page,
    speech_wav,
)
from tests.conftest import ARTIFACTS, ServerProcess, start_server
from tests.seed import seed_interview

pytestmark = pytest.mark.browser

FLATTEN = """function flattenDeep(array) {
  const out = [];
  for (const item of array) {
    if (Array.isArray(item)) out.push(...flattenDeep(item));
    else out.push(item);
  }
  console.log("flattened", out.length);
  return out;
}
"""
MERGE = """def merge_intervals(intervals):
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    print("merged", len(merged))
    return merged
"""


def _server(db: str, tmp_path: Path, log: str) -> ServerProcess:
    return start_server(
        {"DATABASE_URL": db, "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "code-test"},
        tmp_path / log,
    )


def _stop(server: ServerProcess) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
        raise AssertionError(f"the server did not stop: {server.log.read_text()[-2000:]}") from None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_saying(
        speech_wav(tmp_path / "speech.wav", "Let me write the function.")
    ) as browser:
        yield browser


def rows(url: str, model: type[CodeEdit] | type[CodeResult], interview_id: int) -> list[Any]:
    async def read() -> list[Any]:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session:
            found = list(
                await session.scalars(select(model).where(model.interview_id == interview_id))
            )
        await engine.dispose()
        return found

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def editor_text(page: Page, of: str = "p2pCode") -> str:
    """The text of the page's question editor (or of the scratch pad's: `of="p2pScratch"`)."""
    return str(page.evaluate(f"window.{of} && {of}.view ? {of}.view.state.doc.toString() : ''"))


def wait_text(page: Page, needle: str, timeout: float = 15, of: str = "p2pCode") -> None:
    deadline = time.monotonic() + timeout
    while needle not in editor_text(page, of):
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not in the editor: {editor_text(page, of)!r}")
        time.sleep(0.02)


def type_at_end(page: Page, text: str) -> None:
    page.locator("#code-editor .cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def replace_code(page: Page, source: str) -> None:
    page.evaluate(
        "(s) => p2pCode.view.dispatch({changes: {from: 0, to: p2pCode.view.state.doc.length,"
        " insert: s}})",
        source,
    )


def measure_edits(sender: Page, receiver: Page, count: int) -> tuple[float, float, float]:
    """p50, p95 and max in ms of `count` edits, each waited for before the next."""
    receiver.evaluate(
        """() => {
        window.arrivals = {};
        const text = p2pCode.shared.text(p2pCode.question.position);
        text.observe(() => {
          const now = performance.timeOrigin + performance.now();
          for (const m of text.toString().matchAll(/\\/\\*(\\d{3})\\*\\//g)) {
            if (!(m[1] in window.arrivals)) window.arrivals[m[1]] = now;
          }
        });
      }"""
    )
    samples = []
    for i in range(count):
        marker = f"{i:03d}"
        sent = sender.evaluate(
            "(m) => { const at = performance.timeOrigin + performance.now();"
            " p2pCode.view.dispatch({changes: {from: p2pCode.view.state.doc.length,"
            " insert: `/*${m}*/`}}); return at; }",
            marker,
        )
        deadline = time.monotonic() + 5
        while (arrived := receiver.evaluate("(m) => window.arrivals[m]", marker)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"edit {marker} never arrived")
            time.sleep(0.005)
        samples.append(arrived - sent)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], samples[-1]


def into_question(seeded: Any, browser: Browser, url: str, position: int) -> tuple[Page, Page]:
    recruiter = recruiter_page(browser, url, seeded.email, seeded.password, seeded.interview_id)
    candidate = candidate_page(browser, url, seeded.token)
    into_pages(recruiter, candidate, position)
    return recruiter, candidate


def into_pages(recruiter: Page, candidate: Page, position: int) -> None:
    """From the waiting room to coding question `position` on both pages."""
    recruiter.get_by_role("button", name="Start interview").click()
    recruiter.get_by_role("button", name="Start technical part").click()
    expect(recruiter.locator("#question-counter")).to_contain_text("Question: 1/10")
    recruiter.evaluate(f"p2pStage.act('/question', {{position: {position}}})")
    expect(recruiter.locator("#question-counter")).to_contain_text(f"Question: {position}/10")
    expect(candidate.locator("#question-counter")).to_have_text(f"Question: {position}/10")
    for page in (recruiter, candidate):
        expect(page.locator("#code-panel")).to_be_visible()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_recruiter_and_candidate_write_and_run_code_together(
    db: str, browser: Browser, tmp_path: Path
) -> None:
    seeded = seed_interview(db, specialization="frontend")
    server = _server(db, tmp_path, "server.log")
    try:
        recruiter, candidate = into_question(seeded, browser, server.url, 6)
        # Both pages show the starter code, once (the server seeds it).
        wait_text(candidate, "function flattenDeep(array)")
        wait_text(recruiter, "function flattenDeep(array)")
        assert editor_text(candidate).count("function flattenDeep") == 1
        assert candidate.locator("#code-language").inner_text() == "javascript"
        assert "hidden_tests" not in candidate.evaluate("JSON.stringify(p2pCode.question)")

        # Both type; each sees the other's edit, and the other's named cursor.
        type_at_end(candidate, "\n// candidate was here")
        wait_text(recruiter, "// candidate was here")
        type_at_end(recruiter, "\n// recruiter too")
        for page in (recruiter, candidate):
            wait_text(page, "// candidate was here")
            wait_text(page, "// recruiter too")
        expect(recruiter.locator(".cm-ySelectionInfo", has_text="Carl Candidate")).to_be_attached()
        expect(candidate.locator(".cm-ySelectionInfo", has_text="Rita Recruiter")).to_be_attached()

        # A reload keeps the document, and the reloaded page's edits still reach the other.
        candidate.reload()
        expect(candidate.locator("#code-panel")).to_be_visible(timeout=20_000)
        wait_text(candidate, "// recruiter too")
        type_at_end(candidate, "\n// after reload")
        wait_text(recruiter, "// after reload")
        assert editor_text(candidate) == editor_text(recruiter)

        # The latency of an edit, made on one page, shown on the other (one clock: both pages
        # are in the same browser).
        # (bench/code_edits.py measures 200 and across two nodes.)
        p50, p95, _ = measure_edits(candidate, recruiter, 50)
        print(f"edit -> visible on the other page, one node: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        assert p95 < 1000

        # The candidate runs a solution in their browser; the recruiter sees output and results.
        replace_code(candidate, FLATTEN)
        wait_text(recruiter, "console.log")
        candidate.get_by_role("button", name="Run tests").click()
        expect(candidate.locator("#code-status")).to_contain_text("All tests passed. 2/2")
        expect(recruiter.locator("#code-status")).to_contain_text(
            "Candidate's run: All tests passed. 2/2"
        )
        expect(recruiter.locator("#code-output")).to_contain_text("flattened 5")
        expect(recruiter.locator("#code-test-0")).to_have_attribute("data-passed", "true")
        # The hidden tests run in the recruiter's browser and are stored with the code.
        recruiter.get_by_role("button", name="Run hidden tests").click()
        expect(recruiter.locator("#code-hidden-result")).to_contain_text(
            "Hidden tests: 2/2 passed."
        )
        shots = ARTIFACTS / "code"
        shots.mkdir(parents=True, exist_ok=True)
        recruiter.screenshot(path=str(shots / "recruiter.png"), full_page=True)
        candidate.screenshot(path=str(shots / "candidate.png"), full_page=True)
        # A wrong solution: the failing case is named on both pages.
        replace_code(candidate, "function flattenDeep(array) { return array; }\n")
        wait_text(recruiter, "return array; }")
        candidate.get_by_role("button", name="Run tests").click()
        expect(recruiter.locator("#code-status")).to_contain_text("Some tests failed. 1/2")
        expect(candidate.locator("#code-test-0")).to_have_attribute("data-passed", "false")
        replace_code(candidate, FLATTEN)
        wait_text(recruiter, "console.log")

        # The recruiter's scratch pad, open at any moment: on both pages, run, kept.
        recruiter.locator("#scratch-language").select_option("javascript")
        recruiter.get_by_role("button", name="Open scratch pad").click()
        expect(candidate.locator("#scratch-panel")).to_be_visible()
        expect(candidate.locator("#scratch-badge")).to_have_text("javascript")
        candidate.evaluate(
            "p2pScratch.view.dispatch({changes: {from: 0, insert: 'console.log(\"pad\", 6 * 7)'}})"
        )
        wait_text(recruiter, "6 * 7", of="p2pScratch")
        candidate.locator("#scratch-run").click()
        expect(candidate.locator("#scratch-output")).to_contain_text("pad 42")
        expect(recruiter.locator("#scratch-status")).to_contain_text("Candidate's run: Finished.")
        expect(recruiter.locator("#scratch-output")).to_contain_text("pad 42")
        recruiter.screenshot(path=str(shots / "scratch-pad.png"), full_page=True)
        candidate.reload()
        expect(candidate.locator("#scratch-panel")).to_be_visible(timeout=20_000)
        wait_text(candidate, "6 * 7", of="p2pScratch")
        recruiter.get_by_role("button", name="Close scratch pad").click()
        expect(candidate.locator("#scratch-panel")).to_be_hidden()
        expect(recruiter.get_by_role("button", name="Open scratch pad")).to_be_visible()
    finally:
        _stop(server)

    # A server restart: the document comes back from the stored log.
    edits = rows(db, CodeEdit, seeded.interview_id)
    assert len(edits) > 50 and {e.role for e in edits} == {"recruiter", "candidate"}
    result = {r.position: r for r in rows(db, CodeResult, seeded.interview_id)}[6]
    assert result.hidden["passed"] == 2 and result.hidden["total"] == 2
    assert "flattenDeep" in result.hidden["code"]
    assert result.visible["status"] == "failed"
    server = _server(db, tmp_path, "server2.log")
    try:
        again = recruiter_page(
            browser, server.url, seeded.email, seeded.password, seeded.interview_id
        )
        wait_text(again, 'console.log("flattened"', timeout=30)
        assert editor_text(again).count("function flattenDeep") == 1
        again.get_by_role("button", name="End the interview").click()
        again.get_by_role("button", name="End interview").click()
        expect(again.locator("#completed-modal")).to_be_visible()

        # The results page: hidden tests in the verdict, and the code replayed at a moment.
        again.goto(f"{server.url}/interviews/{seeded.interview_id}/results")
        expect(again.locator("#q-6 .code-verdict")).to_contain_text("Hidden tests: 2/2 passed")
        final = again.locator("#q-6 .code-replay pre")
        expect(final).to_contain_text('console.log("flattened"')
        scrubber = again.locator("#q-6 .code-replay input[type=range]")
        scrubber.fill("0")
        expect(final).to_contain_text("return array;")
        expect(final).not_to_contain_text("candidate was here")
        expect(again.locator("#q-6 .code-replay .replay-time")).to_contain_text("0:00")
        again.locator("#q-6").screenshot(path=str(shots / "results.png"))
        expect(again.locator("#scratch-result pre")).to_contain_text('console.log("pad", 6 * 7)')
    finally:
        _stop(server)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_sandbox_stops_endless_loops_and_huge_allocations(
    db: str, browser: Browser, tmp_path: Path
) -> None:
    seeded = seed_interview(db, specialization="python-backend")
    server = _server(db, tmp_path, "server.log")
    try:
        recruiter, candidate = into_question(seeded, browser, server.url, 6)
        wait_text(candidate, "def merge_intervals(intervals):")
        run = candidate.get_by_role("button", name="Run tests")
        status = candidate.locator("#code-status")

        # Python in Pyodide (served by the service): an endless loop is stopped at the limit
        # (5 s on the page; 2 s here to keep the test short).
        candidate.evaluate("p2pCode.sandbox.timeoutMs = 2000")
        replace_code(candidate, "def merge_intervals(intervals):\n    while True:\n        pass\n")
        began = time.monotonic()
        run.click()
        expect(status).to_contain_text("Stopped: the code ran longer than 2 s", timeout=90_000)
        print(f"Pyodide: first load and a 2 s loop stopped after {time.monotonic() - began:.1f} s")
        expect(recruiter.locator("#code-status")).to_contain_text("Stopped: time limit")
        # A huge allocation: MemoryError inside the capped heap, a clear message.
        replace_code(candidate, "def merge_intervals(intervals):\n    return bytearray(2**30)\n")
        run.click()
        expect(status).to_contain_text("more than 256 MB of memory", timeout=90_000)
        # The page is still usable: the right solution runs and passes.
        replace_code(candidate, MERGE)
        began = time.monotonic()
        run.click()
        expect(status).to_contain_text("All tests passed. 2/2", timeout=90_000)
        print(f"Pyodide: fresh start and a passing run in {time.monotonic() - began:.1f} s")
        expect(recruiter.locator("#code-output")).to_contain_text("merged 2")
        began = time.monotonic()
        run.click()
        expect(status).to_contain_text("All tests passed. 2/2 tests passed (")
        print(f"Pyodide: a run on the warm worker in {time.monotonic() - began:.2f} s")
        recruiter.get_by_role("button", name="Run hidden tests").click()
        expect(recruiter.locator("#code-hidden-result")).to_contain_text(
            "Hidden tests: 3/3 passed.", timeout=90_000
        )

        # JavaScript in its Worker: the same limit, and the sandbox has no network.
        spin = candidate.evaluate(
            """() => p2pCode.sandbox.run("javascript", {source: "function f() { for (;;) {} }",
                 fn: "f", tests: [{args: [], expected: 1}]})"""
        )
        assert spin["status"] == "timeout" and "longer than 2 s" in spin["message"]
        offline = candidate.evaluate(
            """() => p2pCode.sandbox.run("javascript", {source:
                 "function f() { return [typeof fetch, typeof XMLHttpRequest, typeof WebSocket]; }",
                 fn: "f", tests: [{args: [], expected: ["undefined", "undefined", "undefined"]}]})"""
        )
        assert offline["status"] == "passed", offline
        assert candidate.locator("#code-editor .cm-content").is_editable()
    finally:
        _stop(server)
