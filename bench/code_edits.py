"""Benchmark of the shared code editor: how long an edit made on the candidate's page takes to
show on the recruiter's, on one node and across two nodes (Redis pub/sub between them).

Real `p2p-interview serve` processes on 127.0.0.1 with a temporary SQLite database, and two
headless Chromium pages (one browser context each) in a coding question: the candidate's page
makes --edits edits, one at a time, each a small insertion at the end of the code; the
recruiter's page timestamps its arrival in the shared Yjs text (both pages share one clock).
Then the candidate's page starts the Python sandbox (Pyodide's first load from this server) and
the JavaScript one, timed.
With --two-nodes the recruiter is on node A and the candidate on node B
(REDIS_URL=redis://127.0.0.1:6379/13, flushed first). Printed: p50, p95 and max in ms.

    .venv/bin/python bench/code_edits.py                  # one node, 200 edits
    .venv/bin/python bench/code_edits.py --two-nodes
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from rooms.bank import bundled_banks, import_banks  # noqa: E402
from rooms.db import make_engine, make_sessionmaker  # noqa: E402
from rooms.migrate import upgrade  # noqa: E402
from tests.browser import (  # noqa: E402
    CHROMIUM,
    candidate_page,
    chromium_args,
    recruiter_page,
    speech_wav,
)
from tests.conftest import start_server  # noqa: E402
from tests.seed import seed_interview  # noqa: E402
from tests.test_browser_code import into_pages, measure_edits  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/13"


async def _bank(url: str) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as session:
        await import_banks(session, bundled_banks())
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--two-nodes", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        upgrade(url)
        asyncio.run(_bank(url))
        env = {"DATABASE_URL": url, "DATA_DIR": str(folder / "var"), "SECRET_KEY": "bench"}
        if args.two_nodes:
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
            env["REDIS_URL"] = REDIS_URL
        servers = [start_server(env, folder / "a.log")]
        if args.two_nodes:
            servers.append(start_server(env, folder / "b.log"))
        try:
            seeded = seed_interview(url, specialization="frontend")
            wav = speech_wav(folder / "speech.wav", "Let me write the function.")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
                )
                recruiter = recruiter_page(
                    browser, servers[0].url, seeded.email, seeded.password, seeded.interview_id
                )
                candidate = candidate_page(browser, servers[-1].url, seeded.token)
                into_pages(recruiter, candidate, 6)
                p50, p95, worst = measure_edits(candidate, recruiter, args.edits)
                started = candidate.evaluate(
                    """async () => { const t = performance.now();
                    await p2pCode.sandbox.start("python"); const p = performance.now() - t;
                    const u = performance.now(); await p2pCode.sandbox.start("javascript");
                    return [p, performance.now() - u]; }"""
                )
                browser.close()
        finally:
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=30)
    where = "two nodes (Redis)" if args.two_nodes else "one node"
    print(f"{args.edits} edits, {where}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms")
    print(
        f"first start in the page: Pyodide {started[0]:.0f} ms, JavaScript worker {started[1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
