"""The composition root: builds the application and its parts from Settings."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp_session import AbstractStorage
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage

from bus.pubsub import Bus, MemoryBus, RedisBus
from jobs.queue import JobQueue, LocalJobs
from jobs.streams import RedisJobs
from jobs.worker import StreamWorker
from media.peer import MediaServer
from pipeline.answers import NodeAnswers
from pipeline.factories import make_storage, make_work
from pipeline.journal import RecordingJournal
from pipeline.moves import InterviewMoves
from pipeline.retention import retention_loop
from rooms.code_documents import CodeDocuments
from rooms.db import make_engine, make_sessionmaker
from service.settings import Settings
from signaling.hub import Hub
from signaling.ice import ice_servers_for
from signaling.presence import MemoryPresence, PresenceStore, RedisPresence
from telemetry.metrics import NodeState
from web import (
    account,
    candidate,
    i18n,
    interview_pages,
    observability,
    pages,
    results_pages,
    setup,
    stage_api,
)
from web.keys import (
    ANSWERS,
    BUS,
    HUB,
    JOURNAL,
    LIMITER,
    MAILER,
    MEDIA,
    MOVES,
    SESSIONS,
    SETTINGS,
    STORAGE,
)
from web.mail import Mailer, OutboxMailer, SmtpMailer
from web.observability import METRICS, NodeMetrics, interview_in_logs
from web.pages import error_middleware
from web.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from web.scripts import module_preloads
from web.security import (
    client_ip,
    csrf_middleware,
    csrf_token,
    recruiter_id,
    sign_in_token,
)

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
MAX_REQUEST_BYTES = 1024 * 1024


def secret_key(settings: Settings) -> bytes:
    """32 bytes for cookie encryption, from SECRET_KEY or a key file made on first run."""
    secret = settings.secret_key
    if not secret:
        path = settings.data_dir / "secret_key"
        if not path.exists():
            private_folder(settings.data_dir)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
    return hashlib.sha256(secret.encode()).digest()


def private_folder(path: Path) -> None:
    """A folder only this service's user can enter (0700): it holds candidates' data."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_starttls,
            settings.smtp_tls,
        )
    return OutboxMailer(settings.outbox_dir)


async def _context(request: web.Request) -> dict[str, object]:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return {}  # the signaling socket renders no page: no sign-in lookup per join
    return {
        "csrf_token": await csrf_token(request),
        "signed_in": await recruiter_id(request) is not None,
        **i18n.switcher_context(request),
    }


async def websocket(request: web.Request) -> web.StreamResponse:
    """The signaling WebSocket; only pages of this site may open it."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc not in {
        request.host,
        urlsplit(request.app[SETTINGS].public_url).netloc,
    }:
        raise web.HTTPForbidden(text="WebSocket connections are accepted only from this site.")
    # The sign-in is checked when the page joins (batched with other joins), not here as well.
    token = await sign_in_token(request)
    return await request.app[HUB].serve(request, None, client_ip(request), sign_in_token=token)


_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


def _websocket_origins(request: web.Request) -> str:
    """The ws:/wss: origins of this site that pages may connect to: PUBLIC_URL's host, and the
    host the page was requested from when it is a plain host name (never other text)."""
    public = urlsplit(request.app[SETTINGS].public_url)
    scheme = "wss" if public.scheme == "https" or request.secure else "ws"
    hosts = [public.netloc]
    if request.host != public.netloc and _HOST.fullmatch(request.host):
        hosts.append(request.host)
    return " ".join(f"{scheme}://{host}" for host in hosts)


SANDBOX_POLICIES = {
    # The Web Workers that run the candidate's code get their own policy: eval (the code
    # itself), no network for JavaScript; Python fetches Pyodide's files from this site, then
    # the worker removes its network functions before running code.
    "/static/js/sandbox-js.js": "default-src 'none'; script-src 'self' 'unsafe-eval'",
    "/static/js/sandbox-python.js": (
        "default-src 'none'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; connect-src 'self'"
    ),
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer of the app, redirects and error pages included (a response-prepare
    signal, not a middleware: a raised 303 never passes back through a middleware)."""
    settings = request.app[SETTINGS]
    headers = response.headers
    headers["Server"] = "p2p-interview"
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.path in SANDBOX_POLICIES:
        headers["Content-Security-Policy"] = SANDBOX_POLICIES[request.path]
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        f"connect-src 'self' {_websocket_origins(request)}; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'",
    )
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self)")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if settings.hsts_seconds > 0:
        headers.setdefault(
            "Strict-Transport-Security", f"max-age={settings.hsts_seconds}; includeSubDomains"
        )


def create_app(settings: Settings) -> web.Application:
    """The whole service for one node, wired from settings."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.on_response_prepare.append(security_headers)
    app[SETTINGS] = settings
    if not settings.data_dir.exists():
        private_folder(settings.data_dir)

    engine = make_engine(settings.effective_database_url)
    app[SESSIONS] = make_sessionmaker(engine)
    redis_client = (
        aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                settings.redis_url, max_connections=50, timeout=10
            )
        )
        if settings.redis_url
        else None
    )
    bus: Bus = RedisBus(redis_client) if redis_client else MemoryBus()
    presence: PresenceStore = RedisPresence(redis_client) if redis_client else MemoryPresence(bus)
    limiter: RateLimiter = RedisRateLimiter(redis_client) if redis_client else MemoryRateLimiter()
    storage = make_storage(settings, app[SESSIONS])

    def server_ice() -> list[dict[str, Any]]:
        # Fresh TURN credentials for each connection: a node runs longer than they last.
        return ice_servers_for(settings.ice_servers, settings.turn_secret, "server")

    journal = RecordingJournal(app[SESSIONS], storage, bus)
    work = (
        make_work(settings, app[SESSIONS], bus)
        if settings.inline_worker or not redis_client
        else None
    )
    jobs: JobQueue
    worker: StreamWorker | None = None
    if redis_client is None:
        assert work is not None
        jobs = LocalJobs(work)
    else:
        jobs = RedisJobs(redis_client, bus)
        if work is not None:
            worker = StreamWorker(redis_client, bus, work, reclaim_after_s=settings.job_reclaim_s)
    answers = NodeAnswers(app[SESSIONS], bus, jobs, work)
    media = MediaServer(
        storage,
        server_ice,
        on_segment=journal.record,
        pcm_sink=answers,
        on_state=journal.state,
        ice_transport_policy=settings.ice_transport_policy,
    )
    node = secrets.token_hex(8)  # this node's name on the bus
    moves = InterviewMoves(answers, bus, node, media)
    hub = Hub(
        bus,
        presence,
        app[SESSIONS],
        max_per_address=settings.ws_per_address,
        join_deadline_s=settings.ws_join_deadline_s,
        messages_per_s=settings.ws_messages_per_s,
        ice_servers=lambda peer: ice_servers_for(settings.ice_servers, settings.turn_secret, peer),
        ice_transport_policy=settings.ice_transport_policy,
        media=media,
        on_join=answers.joined,
        on_move=moves.arrived,
        code=CodeDocuments(app[SESSIONS]),
        on_code_tests=answers.tests_ran,
    )
    app[BUS], app[HUB], app[JOURNAL], app[MEDIA], app[STORAGE] = bus, hub, journal, media, storage
    app[ANSWERS], app[MOVES] = answers, moves
    app[LIMITER] = limiter

    async def node_state() -> NodeState:
        try:
            backlog = tuple(await jobs.backlog())
        except Exception as exc:  # Redis unreachable: the other gauges still count
            log.warning("metrics: the job queue is unreachable: %s", exc)
            backlog = ()
        return NodeState(hub.connections, hub.calls, media.connections, backlog)

    app[METRICS] = NodeMetrics(node_state)
    app[MAILER] = make_mailer(settings)

    key = secret_key(settings)
    cookie: dict[str, Any] = {
        # __Host-: only this host, path /, over HTTPS; a subdomain cannot set or read it.
        "cookie_name": "__Host-p2pi_session" if settings.secure_cookies else "p2pi_session",
        "httponly": True,
        "samesite": "Lax",
        "secure": settings.secure_cookies,
        "max_age": 7 * 24 * 3600,
    }
    session_storage: AbstractStorage = (
        RedisStorage(redis_client, key_factory=lambda: secrets.token_urlsafe(24), **cookie)
        if redis_client
        else EncryptedCookieStorage(key, **cookie)
    )
    setup_sessions(app, session_storage)
    app.middlewares.append(i18n.language_middleware)
    app.middlewares.append(interview_in_logs)
    app.middlewares.append(error_middleware)
    app.middlewares.append(csrf_middleware)

    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        context_processors=[_context],
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    i18n.install(environment)
    environment.globals["module_preloads"] = module_preloads
    app.router.add_static("/static", HERE / "static", name="static")
    app.router.add_get("/ws", websocket, name="ws")
    for module in (pages, account, setup, interview_pages, candidate, stage_api, results_pages):
        app.router.add_routes(module.routes)
    app.router.add_routes(observability.routes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await storage.start()
        await app[HUB].start()
        await journal.start()
        await jobs.start()
        if worker is not None:
            worker.start()
        retention = (
            asyncio.create_task(
                retention_loop(app[SESSIONS], app[STORAGE], settings.retention_days)
            )
            if settings.retention_days > 0
            else None
        )
        yield
        if retention is not None:
            retention.cancel()
        await app[HUB].stop()
        await media.close_all()
        await storage.close()
        await journal.stop()
        await answers.stop()
        if worker is not None:
            await worker.stop()
        await jobs.stop()
        if work is not None:
            work.close()
        await bus.close()
        if redis_client is not None:
            await redis_client.aclose()
        await engine.dispose()

    app.cleanup_ctx.append(lifecycle)

    async def close_websockets(app: web.Application) -> None:
        await app[HUB].close_connections()

    app.on_shutdown.append(close_websockets)
    return app
