"""Every route × every method × malformed bodies, headers, ids and query strings: no answer is a
5xx, and a refused request (4xx) stores nothing."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from rooms.db import make_engine
from service.settings import Settings
from tests.conftest import Mailbox, csrf_of
from tests.helpers import PASSWORD, create_interview_now, register
from tests.test_candidate_and_presence import join_consents

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
NESTED = "[" * 30_000
BODIES: list[tuple[str, Any, dict[str, str]]] = [
    ("none", None, {}),
    ("form", {"email": "a@b", "password": "x", "next": "//evil.example"}, {}),
    ("form-long", {"text": "x" * 5000, "verdict": "hire" * 10, "end": "all"}, {}),
    ("json-nested", NESTED, {"Content-Type": "application/json"}),
    ("json-nan", '{"override": NaN, "text": Infinity}', {"Content-Type": "application/json"}),
    ("json-bigint", '{"position": ' + "9" * 5000 + "}", {"Content-Type": "application/json"}),
    (
        "json-huge-ids",
        '{"position": 100000000000000000000, "override": 1e309, "checked": 1e999}',
        {"Content-Type": "application/json"},
    ),
    (
        "json-types",
        '{"consents": {"$ne": 1}, "position": "1", "checked": "yes", "text": 5}',
        {"Content-Type": "application/json"},
    ),
    ("json-array", "[1, 2, 3]", {"Content-Type": "application/json"}),
    ("json-empty", "", {"Content-Type": "application/json"}),
    ("bad-utf8", b'{"text": "\xff\xfe\xfd"}', {"Content-Type": "application/json; charset=utf-8"}),
    ("utf7", b"+ADw-script+AD4-", {"Content-Type": "application/json; charset=utf-7"}),
    ("multipart-no-boundary", b"--x\r\n\r\n", {"Content-Type": "multipart/form-data"}),
    (
        "multipart-junk",
        b"--b\r\nContent-Disposition: form-data\r\n\r\nz\r\n--b",
        {"Content-Type": "multipart/form-data; boundary=b"},
    ),
    (
        "form-bad-encoding",
        b"text=%ff%fe&csrf_token=%zz",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    ("text", "hello", {"Content-Type": "text/plain"}),
    ("too-large", "x" * (1024 * 1024 + 10), {"Content-Type": "application/json"}),
]
HEADERS: list[dict[str, str]] = [
    {"Accept": "application/json"},
    {"X-Forwarded-For": "not-an-ip, ::1, 999.1.1.1"},
    {"Origin": "https://evil.example", "Referer": "https://evil.example/"},
    {"Cookie": "p2pi_session=garbage; p2pi_session=more"},
    {"Range": "bytes=99999999999999999999-"},
    {"Host": "evil.example; script-src *"},
    {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "short",
        "Sec-WebSocket-Version": "99",
    },
    {"Content-Type": "application/json; charset=latin-1", "Accept-Encoding": "gzip;q=x"},
    {"User-Agent": "x" * 4000},
]
QUERIES = [
    "?next=%2F%09%2Fevil.example",
    "?q=%ff%fe&state=%3Cscript%3E",
    "?q=" + "x" * 3000,
    "?download&download=1",
    "?%00=%00&a=1&a=2",
    "?signed_out=everywhere&email=" + "e" * 400,
    "?next=" + "%2F" * 200,
]
ID_VALUES = [
    "0",
    "-1",
    "²",
    "١",
    "99999999999",
    "2147483648",
    "1e3",
    "%00",
    "..%2F..%2Fsecret_key",
    "x" * 300,
]
TOKEN_VALUES = ["A" * 43, "%00" * 5, "x" * 500, "..", "-" * 43, "%F0%9F%98%80"]
LAST = ("/signout", "/account/sessions", "/end", "/delete")

# One round trip that changes whenever anything a request could store changes (the time a
# session was last used excepted: reading a page notes it).
FINGERPRINT = text(
    """
    SELECT
      (SELECT count(*) FROM recruiters), (SELECT max(password_hash) FROM recruiters),
      (SELECT count(*) FROM password_setup_links), (SELECT count(used_at) FROM password_setup_links),
      (SELECT count(*) FROM recruiter_sessions),
      (SELECT count(*) FROM interviews), (SELECT sum(length(state)) FROM interviews),
      (SELECT sum(coalesce(current_question, 0)) FROM interviews),
      (SELECT count(candidate_joined_at) FROM interviews), (SELECT count(verdict) FROM interviews),
      (SELECT sum(length(verdict_note)) FROM interviews), (SELECT count(ended_at) FROM interviews),
      (SELECT count(*) FROM consents), (SELECT count(*) FROM interview_events),
      (SELECT count(*) FROM interview_questions), (SELECT count(*) FROM topic_checks),
      (SELECT count(*) FROM notes), (SELECT sum(length(text)) FROM notes),
      (SELECT count(*) FROM recordings), (SELECT count(*) FROM answers),
      (SELECT count(*) FROM scores), (SELECT sum(coalesce(override, -1)) FROM scores)
    """
)


def fill(pattern: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values[m.group(1)], pattern)


class Campaign:
    """Sends the requests of one browser and checks each answer."""

    def __init__(self, client: TestClient, engine: Any, sign_in: Any) -> None:
        self.client, self.engine, self.sign_in = client, engine, sign_in
        self.token = ""
        self.statuses: Counter[int] = Counter()
        self.sent = 0
        self.fingerprint: Any = None

    async def snapshot(self) -> Any:
        async with self.engine.connect() as connection:
            return tuple((await connection.execute(FINGERPRINT)).one())

    async def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("X-CSRF-Token", self.token)
        if isinstance(body, dict) and self.token:
            body = {**body, "csrf_token": self.token}
        if isinstance(body, dict):
            form = FormData()
            for key, value in body.items():
                form.add_field(key, value)
            body = form
        response = await self.client.request(
            method, path, data=body, headers=headers, allow_redirects=False
        )
        await response.read()
        self.sent += 1
        self.statuses[response.status] += 1
        assert response.status < 500, (method, path[:120], headers, response.status)
        assert "Traceback" not in (await response.text(errors="replace"))
        after = await self.snapshot()
        if response.status >= 400:
            assert after == self.fingerprint, (
                "stored by a refused request",
                method,
                path[:120],
                response.status,
            )
        self.fingerprint = after
        if response.status < 400 and any(
            path.startswith(p)
            for p in ("/signin", "/signout", "/account/sessions", "/setup-password")
        ):
            await self.sign_in()
            self.fingerprint = await self.snapshot()


@pytest.fixture(name="settings")
def generous_settings(settings: Settings) -> Settings:
    """Limits out of the way: thousands of sign-in, setup and invitation requests are made."""
    return replace(
        settings,
        signin_attempts_per_15min=100_000,
        setup_requests_per_hour=100_000,
        invitations_per_hour=100_000,
    )


async def test_no_route_method_or_input_gets_a_5xx_or_stores_anything_when_refused(
    client, make_client, mailbox: Mailbox, settings: Settings
) -> None:
    started = time.perf_counter()
    await register(client, mailbox, "fuzz-http@example.com")
    own, link = await create_interview_now(client)
    other = await make_client()
    await register(other, mailbox, "fuzz-other@example.com")
    foreign, foreign_link = await create_interview_now(other)
    candidate = await make_client()
    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    setup = await make_client()
    token = await csrf_of(setup, "/register")
    await setup.post("/register", data={"email": "fuzz-http@example.com", "csrf_token": token})
    setup_token = mailbox.link_in(mailbox.wait_for("fuzz-http@example.com", count=2)).rsplit(
        "/", 1
    )[1]

    engine = make_engine(settings.database_url)

    async def resign() -> None:
        token = await csrf_of(client, "/signin")
        await client.post(
            "/signin",
            data={"email": "fuzz-http@example.com", "password": PASSWORD, "csrf_token": token},
        )
        signed_in.token = await csrf_of(client, "/interviews")

    signed_in = Campaign(client, engine, resign)
    signed_in.token = await csrf_of(client, "/interviews")
    anonymous = Campaign(await make_client(), engine, lambda: _nothing())
    anonymous.token = await csrf_of(anonymous.client, "/signin")
    good = {
        "id": str(own),
        "recording": "1",
        "position": "1",
        "topic": "1",
        "token": link.rsplit("/", 1)[1],
    }

    resources = []
    for resource in client.server.app.router.resources():
        pattern = resource.canonical
        if pattern.startswith("/static"):
            continue
        methods = {route.method for route in resource}
        resources.append((pattern, methods))
    resources.sort(key=lambda item: any(part in item[0] for part in LAST))
    assert len(resources) >= 30

    for campaign in (signed_in, anonymous):
        campaign.fingerprint = await campaign.snapshot()
        for pattern, methods in resources:
            for method in METHODS:
                path = fill(pattern, good)
                if method not in methods and not (method == "HEAD" and "GET" in methods):
                    await campaign.send(method, path, {"x": "1"})
                    continue
                if method == "HEAD":
                    await campaign.send(method, path)
                    continue
                for name in re.findall(r"\{(\w+)", pattern):
                    values = ID_VALUES if name != "token" else TOKEN_VALUES
                    if name == "id":
                        values = [*values, str(foreign)]
                    if name == "token":
                        values = [*values, foreign_link.rsplit("/", 1)[1], setup_token]
                    for value in values:
                        await campaign.send(
                            method, fill(pattern, {**good, name: value}), {"text": "x"}
                        )
                if method == "GET":
                    for query in QUERIES:
                        await campaign.send(method, path + query)
                if campaign is signed_in and method != "GET":
                    for _, body, headers in BODIES:
                        await campaign.send(method, path, body, headers)
                if campaign is signed_in:
                    for headers in HEADERS:
                        body = {"text": "x"} if method == "POST" else None
                        await campaign.send(method, path, body, headers)
        await campaign.send("GET", "/static/..%2F..%2Fapp.py")
        await campaign.send("GET", "/static/%2e%2e/%2e%2e/secret_key")
    await engine.dispose()
    elapsed = time.perf_counter() - started
    total = signed_in.sent + anonymous.sent
    statuses = signed_in.statuses + anonymous.statuses
    print(
        f"\nHTTP fuzz: {total} requests over {len(resources)} routes x {len(METHODS)} methods in "
        f"{elapsed:.1f} s; answers >= 500: 0; statuses {dict(sorted(statuses.items()))}"
    )
    assert not [status for status in statuses if status >= 500]
    assert total > 2000


async def _nothing() -> None:
    return None


def test_bodies_are_what_they_say() -> None:
    """The malformed JSON bodies above are really refused by a plain parser (a guard against a
    fuzz that tests nothing)."""

    def no_constants(name: str) -> None:
        raise ValueError(name)

    malformed = {"json-nested", "json-nan", "json-bigint", "json-empty"}
    for name, body, _ in BODIES:
        if name in malformed:
            with pytest.raises((ValueError, RecursionError)):
                json.loads(body, parse_constant=no_constants)
