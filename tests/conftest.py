"""Fixtures that start real services: SQLite and PostgreSQL databases, an SMTP server, the app."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller
from sqlalchemy import text

from rooms.bank import bundled_banks, import_banks
from rooms.db import make_engine, make_sessionmaker
from rooms.migrate import upgrade
from service.settings import Settings
from tests.s3 import S3Server, start_s3
from tests.turn import TurnServer, start_turn
from web.app import create_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
TABLES = [
    "score_calibrations",
    "scores",
    "answers",
    "recordings",
    "notes",
    "topic_checks",
    "interview_questions",
    "interview_events",
    "consents",
    "interviews",
    "password_setup_links",
    "recruiter_sessions",
    "recruiters",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _create_pg_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _load_bank(url: str) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine).begin() as session:
        await import_banks(session, bundled_banks())
    await engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database with the bundled bank, once per backend per test run."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        asyncio.run(_load_bank(url))
        yield url
        return
    name = f"p2pi_test_{secrets.token_hex(4)}"
    asyncio.run(_create_pg_database(name))
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        upgrade(url)
        asyncio.run(_load_bank(url))
        yield url
    finally:
        asyncio.run(_drop_pg_database(name))


async def clean_database(url: str) -> None:
    """Remove everything tests create, keeping the schema and the question bank."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        if url.startswith("postgresql"):
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
    await engine.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    await clean_database(database_url)
    yield database_url


@dataclass
class Mailbox:
    """What the in-process SMTP server received."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 10) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if to.lower() in str(m["To"]).lower()]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.05)
        raise AssertionError(f"no email #{count} to {to} within {timeout}s")

    def link_in(self, message: Message, pattern: str = r"https?://\S+/setup-password/\S+") -> str:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                body = part.get_payload(decode=True).decode()
                match = re.search(pattern, body)
                if match:
                    return match.group(0)
        raise AssertionError("no link in the email")


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) in a thread of this process."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def settings(db: str, tmp_path: Path, smtp: tuple[Mailbox, int]) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=db,
        secret_key="test-secret",
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        public_url="http://127.0.0.1:8080",
    )


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


@pytest.fixture
async def client(aiohttp_client, settings: Settings) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def make_client(aiohttp_client, client: TestClient):  # type: ignore[no-untyped-def]
    """Another browser (its own cookies) on the same server, or on a new node with other settings."""

    async def make(node_settings: Settings | None = None) -> TestClient:
        if node_settings is None:
            return await aiohttp_client(client.server)
        return await aiohttp_client(create_app(node_settings))

    return make


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A Redis database of the tests' own, emptied before each test."""
    client = aioredis.from_url(TEST_REDIS_URL)
    await client.flushdb()
    await client.aclose()
    yield TEST_REDIS_URL


def with_redis(settings: Settings, url: str = TEST_REDIS_URL) -> Settings:
    return replace(settings, redis_url=url)


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(env_overrides: dict[str, str], log: Path, limit_s: float = 60) -> ServerProcess:
    """The real `p2p-interview serve` in a child process, waiting until it answers."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "INFO",
        **env_overrides,
    }
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return ServerProcess(url, process, log)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_of(client: TestClient, path: str) -> str:
    """GET a page and return the CSRF token in its form."""
    response = await client.get(path)
    body = await response.text()
    match = CSRF_RE.search(body)
    assert match, f"no CSRF token on {path} ({response.status})"
    return match.group(1)


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[TurnServer]:
    """Debian's coturn on 127.0.0.1 (UDP and TCP on one port, TLS with a self-signed certificate
    on another), checking the service's time-limited credentials against its own secret."""
    server = start_turn(tmp_path / "turn")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """A real S3-API server (moto's standalone server, in a thread) with an empty bucket."""
    server = start_s3()
    try:
        yield server
    finally:
        server.server.stop()
