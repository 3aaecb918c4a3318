"""Kill the server with SIGKILL mid-recording: the file up to the kill is playable."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from tests.conftest import start_server
from tests.rtc import SpeakingPeer, decode_to_pcm, espeak, probe_seconds, rms
from tests.seed import _seed
from tests.test_candidate_and_presence import next_of

LONG_ANSWER = " ".join(
    [
        "An index is a separate data structure that lets the database find rows without reading",
        "the whole table. A B-tree index keeps keys sorted, so it serves equality and range",
        "queries, and ordering. Every index slows down writes and takes space, so index the",
        "columns you filter and join on, and check the plan with explain analyze.",
    ]
    * 2
)


async def test_sigkill_mid_recording_leaves_a_playable_file(db: str, tmp_path: Path) -> None:
    seeded = await _seed(db, "kill@example.com", "a long pass phrase", "python-backend")
    server = start_server(
        {"DATABASE_URL": db, "DATA_DIR": str(tmp_path / "var"), "SECRET_KEY": "kill-test"},
        tmp_path / "server.log",
    )
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            # The recruiter signs in and starts the interview; the candidate consents.
            page = await (await http.get(f"{server.url}/signin")).text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            await http.post(
                f"{server.url}/signin",
                data={"email": seeded.email, "password": seeded.password, "csrf_token": token},
            )
            async with aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True)
            ) as candidate:
                page = await (await candidate.get(f"{server.url}/i/{seeded.token}")).text()
                ctoken = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                response = await candidate.post(
                    f"{server.url}/i/{seeded.token}/join",
                    json={"consents": ["recording", "ai_analysis"]},
                    headers={"X-CSRF-Token": ctoken},
                )
                assert response.status == 200
                page = await (
                    await http.get(f"{server.url}/interviews/{seeded.interview_id}")
                ).text()
                token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                await http.post(
                    f"{server.url}/interviews/{seeded.interview_id}/start",
                    data={"csrf_token": token},
                )

                ws = await candidate.ws_connect(f"{server.url.replace('http', 'ws')}/ws")
                await ws.send_json({"type": "join", "role": "candidate", "token": seeded.token})
                await next_of(ws, "joined")
                wav = espeak(tmp_path / "long.wav", LONG_ANSWER)
                peer = SpeakingPeer(ws, wav)
                await peer.start()
                folder = tmp_path / "var" / "recordings" / f"interview-{seeded.interview_id}"
                deadline = time.monotonic() + 10
                while not list(folder.glob("candidate-*.opus")) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                started = time.monotonic()
                await asyncio.sleep(4.0)
                server.process.send_signal(signal.SIGKILL)
                killed_after = time.monotonic() - started
                server.process.wait(timeout=10)
                await peer.close()
    finally:
        if server.process.poll() is None:
            server.process.kill()
    [path] = list(folder.glob("candidate-*.opus"))
    seconds = probe_seconds(path)
    # At most about a second lost: the page being built when the process died.
    assert killed_after - 1.6 < seconds <= killed_after + 0.5, (seconds, killed_after)
    pcm = decode_to_pcm(path)
    assert rms(pcm) > 300
