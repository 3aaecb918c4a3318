"""A call across a lab of namespaces (tests/netns.py): the service and coturn in the server's
namespace, each browser in a namespace of its own, a SQLite database the test made.

Used by the namespace tests and by bench/connect.py.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rooms.bank import bundled_banks, import_banks
from rooms.db import make_engine, make_sessionmaker
from rooms.migrate import upgrade
from tests.browser import CHROMIUM, chromium_args
from tests.netns import Host, Lab, listens, wait_for_port
from tests.turn import TurnServer, start_turn

SERVICE_PORT = 8080
TURN_PORT = 3478
TURN_TLS_PORT = 443
"""TLS on 443: what a network that allows only HTTPS still lets through."""


def prepare_database(folder: Path) -> str:
    """A migrated SQLite database with the bundled question bank (any namespace can open it)."""
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{folder / 'lab.db'}"
    upgrade(url)

    async def load() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine).begin() as session:
            await import_banks(session, bundled_banks())
        await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, load()).result()
    return url


@dataclass
class Service:
    """`p2p-interview serve` inside a namespace."""

    url: str
    log: Path
    data_dir: Path

    def recordings(self, interview_id: int, role: str) -> list[Path]:
        return sorted(
            (self.data_dir / "recordings" / f"interview-{interview_id}").glob(f"{role}-*")
        )


def start_service(
    lab: Lab, host: Host, database_url: str, folder: Path, env: dict[str, str] | None = None
) -> Service:
    """The service on the host's address (its pages are served from there)."""
    url = f"http://{host.address}:{SERVICE_PORT}"
    data_dir = folder / "var"
    log = folder / "service.log"
    process = lab.popen(
        host,
        [sys.executable, "-m", "service.cli", "serve"],
        log,
        {
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "SECRET_KEY": "lab-test",
            "HOST": host.address,
            "PORT": str(SERVICE_PORT),
            "PUBLIC_URL": url,
            "LOG_LEVEL": "INFO",
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        },
    )
    try:
        wait_for_port(host, SERVICE_PORT, timeout=60, process=process)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: {log.read_text(errors='replace')[-3000:]}") from None
    return Service(url, log, data_dir)


def start_turn_in(lab: Lab, host: Host, folder: Path) -> TurnServer:
    """coturn on the host's address: UDP and TCP on 3478, TLS on 443."""
    server = start_turn(
        folder,
        address=host.address,
        port=TURN_PORT,
        tls_port=TURN_TLS_PORT,
        wrap=host.argv,
        ready=lambda port: listens(host, port),
    )
    lab.processes.append(server.process)
    return server


def wrapper(host: Host, folder: Path) -> Path:
    """An executable that runs Chromium inside the host's namespace (Playwright starts it and
    talks to it over pipes, so it does not care where its network is)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chromium-{host.name}"
    path.write_text(f'#!/bin/sh\nexec ip netns exec {host.namespace} {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return path


def browser_args(wav: Path, service: Service, turn: TurnServer | None = None) -> list[str]:
    """chromium_args, for a browser in a namespace: the site's origin counts as secure (it is
    plain http on a lab address), and the TURN server's own certificate is trusted."""
    args = [a for a in chromium_args(wav) if a != "--allow-loopback-in-peer-connection"]
    args.append(f"--unsafely-treat-insecure-origin-as-secure={service.url}")
    if turn is not None:
        args.extend(turn.chromium_args())
    return args


@contextmanager
def browsers(
    hosts: Sequence[Host], wav: Path, service: Service, turn: TurnServer | None, folder: Path
) -> Iterator[dict[str, Any]]:
    """One headless Chromium per host, by host name."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = {
            host.name: playwright.chromium.launch(
                executable_path=str(wrapper(host, folder)),
                headless=True,
                args=browser_args(wav, service, turn),
            )
            for host in hosts
        }
        try:
            yield launched
        finally:
            for browser in launched.values():
                browser.close()


SELECTED_PAIR = "window.p2pCall ? window.p2pCall.selectedPair() : null"
RECORDING_PAIR = """async () => {
  const link = window.p2pRecording;
  if (!link || !link.pc) return null;
  const { selectedPair } = await import("/static/js/quality.js");
  return selectedPair(await link.pc.getStats());
}"""


def candidates_js(which: str) -> str:
    """A page expression: the [type, address] of every remote candidate its call (`call`) or
    recording connection (`recording`) has seen."""
    pc = (
        "window.p2pCall && window.p2pCall.pc"
        if which == "call"
        else "window.p2pRecording && window.p2pRecording.pc"
    )
    return f"""async () => {{
  const pc = {pc};
  const found = [];
  if (!pc) return found;
  (await pc.getStats()).forEach((r) => {{
    if (r.type === "remote-candidate") found.push([r.candidateType, r.address || r.ip || ""]);
  }});
  return found;
}}"""


class Person:
    """One person's browser as HTTP requests and a signaling socket, against a service at `url`
    (made and used inside one thread's event loop, in whichever namespace that thread is)."""

    def __init__(self, url: str) -> None:
        import aiohttp

        self.url = url
        # Cookies for an IP address host: aiohttp keeps them only when told to.
        self.http = aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.token = ""

    async def csrf(self, path: str) -> str:
        import re

        async with self.http.get(path) as response:
            body = await response.text()
        match = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert match, f"no CSRF token on {path} ({response.status})"
        self.token = match.group(1)
        return self.token

    async def sign_in(self, email: str, password: str) -> None:
        token = await self.csrf("/signin")
        form = {"email": email, "password": password, "csrf_token": token, "next": "/interviews"}
        async with self.http.post("/signin", data=form) as response:
            assert response.status == 200, await response.text()

    async def start(self, interview_id: int) -> None:
        token = await self.csrf(f"/interviews/{interview_id}")
        async with self.http.post(
            f"/interviews/{interview_id}/start", data={"csrf_token": token}
        ) as response:
            assert response.status == 200, await response.text()

    async def api(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(path, json=body, headers={"X-CSRF-Token": self.token}) as reply:
            assert reply.status == 200, await reply.text()
            return dict(await reply.json())

    async def consent(self, token: str) -> None:
        """The candidate ticks both consents and clicks Join."""
        csrf = await self.csrf(f"/i/{token}")
        async with self.http.post(
            f"/i/{token}/join",
            json={"consents": ["recording", "ai_analysis"]},
            headers={"X-CSRF-Token": csrf},
        ) as response:
            assert response.status == 200, await response.text()

    async def socket(self, join: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The signaling socket, joined: (socket, joined message)."""
        import json

        ws = await self.http.ws_connect("/ws")
        await ws.send_json({"type": "join", **join})
        async with asyncio.timeout(20):
            while True:
                message = json.loads((await ws.receive()).data)
                if message["type"] == "joined":
                    return ws, message
                if message["type"] == "error":
                    raise RuntimeError(message)

    async def close(self) -> None:
        await self.http.close()


def rows(database: str, model: Any, interview_id: int) -> list[Any]:
    """Rows of a model for an interview, read from here (a thread of its own: safe beside
    Playwright's event loop)."""
    from sqlalchemy import select

    async def read() -> list[Any]:
        engine = make_engine(database)
        async with make_sessionmaker(engine)() as session:
            found = await session.scalars(select(model).where(model.interview_id == interview_id))
            result = list(found)
        await engine.dispose()
        return result

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def wait_for_row(
    database: str, model: Any, interview_id: int, timeout: float, where: Callable[[Any], Any]
) -> Any:
    """The first row of the model for the interview that `where` accepts, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in rows(database, model, interview_id):
            if where(row):
                return row
        time.sleep(0.2)
    raise AssertionError(f"no such {model.__name__} within {timeout} s")


async def _read_all(ws: Any) -> None:
    async for _ in ws:
        pass


async def _recruiter_side(
    service: Service, seeded: Any, ready: threading.Event, go: threading.Event,
    done: threading.Event,
) -> float:  # fmt: skip
    person = Person(service.url)
    try:
        await person.sign_in(seeded.email, seeded.password)
        assert await asyncio.to_thread(ready.wait, 60), "the candidate never got ready"
        await person.start(seeded.interview_id)
        await person.api(f"/api/interviews/{seeded.interview_id}/technical", {})
        go.set()
        assert await asyncio.to_thread(done.wait, 180), "the candidate never finished"
        moved = time.time()
        await person.api(f"/api/interviews/{seeded.interview_id}/question", {"position": 2})
        return moved
    finally:
        await person.close()


async def _candidate_side(
    service: Service, seeded: Any, wav: Path, ready: threading.Event, go: threading.Event,
    done: threading.Event,
) -> None:  # fmt: skip
    from tests.rtc import SpeakingPeer, wav_seconds

    person = Person(service.url)
    try:
        await person.consent(seeded.token)
        ws, _ = await person.socket({"role": "candidate", "token": seeded.token})
        await ws.send_json({"type": "ready"})
        ready.set()
        assert await asyncio.to_thread(go.wait, 60), "question 1 never came"
        peer = SpeakingPeer(ws, wav, browser_voice=True)
        await peer.start()
        reading = asyncio.create_task(_read_all(ws))  # as a page does: answer the heartbeat
        await peer.wait(limit=wav_seconds(wav) + 60)
        await asyncio.sleep(1.0)  # the last packets are still on their way through the link
        await peer.close()
        done.set()
        reading.cancel()
        await ws.close()
    finally:
        await person.close()


def answer_question_1(
    server: Host, candidate: Host, service: Service, seeded: Any, wav: Path
) -> float:
    """The recruiter (in the server's namespace) starts the interview and opens question 1;
    the candidate (an aiortc peer in theirs) answers it with `wav`; the recruiter moves on.
    Returns when the recruiter moved on (time.time())."""
    from tests.netns import InNamespace, run_in

    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    speaking = InNamespace(
        candidate, lambda: asyncio.run(_candidate_side(service, seeded, wav, ready, go, done))
    )
    moved: float = run_in(
        server, lambda: asyncio.run(_recruiter_side(service, seeded, ready, go, done)), 300
    )
    speaking.result(60)
    return moved


def meet(
    service: Service, seeded: Any, launched: dict[str, Any], timeout_ms: int = 45_000
) -> tuple[Any, Any]:
    """The recruiter waits, the candidate joins, the interview starts: both in the call."""
    from playwright.sync_api import expect

    from tests.browser import candidate_page, recruiter_page

    recruiter = recruiter_page(
        launched["rec"], service.url, seeded.email, seeded.password, seeded.interview_id
    )
    expect(recruiter.locator("#candidate-status")).to_contain_text("has not joined yet")
    candidate = candidate_page(launched["cand"], service.url, seeded.token)
    start = recruiter.get_by_role("button", name="Start interview")
    expect(start).to_be_enabled(timeout=20_000)
    start.click()
    expect(recruiter.get_by_role("heading", name="Interview plan")).to_be_visible()
    for page in (recruiter, candidate):
        expect(page.locator("#call-state")).to_have_text("Connected", timeout=timeout_ms)
    return recruiter, candidate


NOTE_STATES = """() => {
  window.shown = [];
  for (const id of ["call-state", "network-notice"]) {
    const box = document.getElementById(id);
    new MutationObserver(() => window.shown.push(box.textContent.trim())).observe(
      box, { childList: true, characterData: true, subtree: true });
  }
}"""
"""Page script: record every text #call-state and #network-notice show in window.shown (a
state can last less than a poll)."""
