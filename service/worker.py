"""`p2p-interview worker`: a process that serves speech jobs from Redis, with no web parts."""

from __future__ import annotations

import asyncio
import logging
import signal

import redis.asyncio as aioredis

from bus.pubsub import RedisBus
from jobs.worker import StreamWorker
from pipeline.factories import make_work
from rooms.db import make_engine, make_sessionmaker
from service.settings import Settings
from telemetry.metrics import serve_metrics

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, name: str | None, metrics_at: tuple[str, int | None] = ("", None)
) -> None:
    """Serve speech jobs from the Redis stream until SIGTERM or SIGINT (the running job is
    finished first; a job of a worker that dies is taken over by another after
    JOB_RECLAIM_S). With a port in `metrics_at`, /metrics is served there: a separate bind,
    for the scraper's network only."""
    host, port = metrics_at
    if port is not None:
        serve_metrics(host, port)
    client = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=10, timeout=10
        )
    )
    engine = make_engine(settings.effective_database_url)
    bus = RedisBus(client)
    work = make_work(settings, make_sessionmaker(engine), bus)
    worker = StreamWorker(client, bus, work, name=name, reclaim_after_s=settings.job_reclaim_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await work.warm_up()  # load the models before taking the first job
        log.info("worker %s ready", worker.name)
        worker.start()
        await stop.wait()
        await worker.stop()
    finally:
        work.close()
        await bus.close()
        await client.aclose()
        await engine.dispose()
