"""A worker: one consumer of the Redis Streams group, serving jobs one at a time.

A worker keeps its running job fresh; the jobs of a worker that died go stale and are
reclaimed by another one (XAUTOCLAIM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bus.events import JobReply
from bus.pubsub import Bus
from jobs.queue import MAX_DELIVERIES, Handler
from jobs.streams import (
    ANSWER_STREAM,
    AUDIO_KEY,
    FAILED_STREAM,
    GROUP,
    STREAMS,
    WORKERS,
    decode,
    ensure_group,
    entry_id_text,
    redis_now,
)
from telemetry.metrics import JOB_WAIT_SECONDS

log = logging.getLogger(__name__)


class StreamWorker:
    """One consumer of the group: takes stale jobs first, then new ones, one at a time."""

    def __init__(
        self,
        client: aioredis.Redis,
        bus: Bus,
        handler: Handler,
        name: str | None = None,
        reclaim_after_s: float = 15.0,
    ) -> None:
        self.client = client
        self.bus = bus
        self.handler = handler
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.reclaim_after_ms = int(reclaim_after_s * 1000)
        self.done = 0
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._cursors: dict[str, str] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="stream-worker")
        self._beat = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")

    async def stop(self) -> None:
        """Finish the running job, then stop."""
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._stopped.set()
        if self._beat is not None:
            try:  # it ends after its current Redis call, not in the middle of it
                await asyncio.wait_for(asyncio.shield(self._beat), 5)
            except TimeoutError:  # Redis unreachable: do not hang the shutdown on it
                self._beat.cancel()
            with contextlib.suppress(Exception):
                await self.client.zrem(WORKERS, self.name)

    async def _heartbeat(self) -> None:
        """Say every second that this worker is alive (for /healthz); forget long-dead ones."""
        while not self._stopped.is_set():
            with contextlib.suppress(Exception):
                now = await redis_now(self.client)
                await self.client.zadd(WORKERS, {self.name: now})
                await self.client.zremrangebyscore(WORKERS, "-inf", now - 3600)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), 1.0)

    async def run(self) -> None:
        log.info("worker %s: serving %s", self.name, ", ".join(STREAMS))
        group_ready = False
        while not self._stopping:
            try:
                if not group_ready:
                    await ensure_group(self.client)
                    group_ready = True
                await self._run_batch(await self._next())
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if str(exc).startswith("NOGROUP"):
                    # Redis lost its data (a restart without persistence): start over.
                    log.warning("worker %s: the job streams are gone; recreating them", self.name)
                    group_ready = False
                else:
                    log.exception("worker %s: queue error; retrying", self.name)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("worker %s: queue error; retrying", self.name)
                await asyncio.sleep(1.0)

    async def _run_batch(self, batch: list[tuple[str, str, dict[bytes, bytes], bool]]) -> None:
        """Handle the jobs taken, one after the other; all of them are kept fresh from the
        moment they are taken, so one waiting its turn is not taken by another worker."""
        fresh = {
            entry_id: asyncio.create_task(self._keep_fresh(stream, entry_id))
            for stream, entry_id, _, _ in batch
        }
        try:
            for stream, entry_id, fields, reclaimed in batch:
                try:
                    await self._handle(stream, entry_id, fields, reclaimed)
                finally:
                    fresh.pop(entry_id).cancel()
        finally:
            for task in fresh.values():
                task.cancel()

    async def _next(self) -> list[tuple[str, str, dict[bytes, bytes], bool]]:
        """(stream, entry id, fields, reclaimed) of the next jobs: stale ones of dead workers
        first, else new ones; empty after a second of quiet."""
        for stream in STREAMS:
            # Each call looks at a few pending entries from the cursor on: walk the whole
            # pending list over successive calls, so a stale job behind busy ones is found.
            reply = await self.client.xautoclaim(
                stream,
                GROUP,
                self.name,
                min_idle_time=self.reclaim_after_ms,
                start_id=self._cursors.get(stream, "0-0"),
                count=1,
            )
            cursor, claimed = reply[0], reply[1]  # Redis 7 adds a third part: deleted ids
            self._cursors[stream] = entry_id_text(cursor)
            for entry_id, fields in claimed:
                if fields:  # a deleted entry comes back empty
                    return [(stream, entry_id_text(entry_id), fields, True)]
                await self.client.xack(stream, GROUP, entry_id)
        found: Any = await self.client.xreadgroup(
            GROUP, self.name, dict.fromkeys(STREAMS, ">"), count=1, block=1000
        )
        return [
            (entry_id_text(stream), entry_id_text(entry_id), fields, False)
            for stream, entries in found or []
            for entry_id, fields in entries
        ]

    async def _handle(
        self, stream: str, entry_id: str, fields: dict[bytes, bytes], reclaimed: bool
    ) -> None:
        try:
            job, reply_to = decode(entry_id, fields)
        except (ValueError, UnicodeDecodeError) as exc:
            await self._give_up(stream, entry_id, fields, f"unreadable job: {exc}")
            return
        if reclaimed:
            deliveries = await self._deliveries(stream, entry_id)
            log.warning(
                "worker %s: reclaimed %s job %s (delivery %d)",
                self.name,
                job.kind,
                job.id,
                deliveries,
            )
            if deliveries > MAX_DELIVERIES:
                await self._give_up(
                    stream, entry_id, fields, f"{job.kind} job failed {deliveries - 1} times"
                )
                return
        if job.expired:  # a transcript nobody waits for any more
            await self._finish(stream, entry_id)
            return
        audio = job.body.get("audio")
        if isinstance(audio, dict):
            job.pcm = await self._read_audio(audio)
            if len(job.pcm) != audio.get("bytes"):
                # Gone (expired, or Redis lost it): the asker stops waiting and does without.
                log.warning("worker %s: the audio of job %s is gone", self.name, job.id)
                await self._finish(stream, entry_id)
                return
        if not reclaimed:
            queued_at = int(str(entry_id).split("-", 1)[0]) / 1000
            JOB_WAIT_SECONDS.labels(job.kind).observe(
                max(0.0, await redis_now(self.client) - queued_at)
            )
        try:
            reply = await self.handler(job)
        except Exception:
            # Left pending: another delivery is tried after `reclaim_after_s`.
            log.exception("worker %s: %s job %s failed", self.name, job.kind, job.id)
            return
        if reply_to:
            await self.bus.publish(reply_to, JobReply(job.id, reply or {}).encode())
        await self._finish(stream, entry_id)
        self.done += 1

    async def _read_audio(self, audio: dict[str, Any]) -> bytes:
        key, size = str(audio.get("key", "")), audio.get("bytes")
        if not key.startswith(AUDIO_KEY) or not isinstance(size, int) or size <= 0:
            return b""
        audio_bytes: bytes = await self.client.getrange(key, 0, size - 1)  # type: ignore[assignment]
        return bytes(audio_bytes)

    async def _give_up(
        self, stream: str, entry_id: str, fields: dict[bytes, bytes], why: str
    ) -> None:
        """Stop retrying a job. An answer is kept in the failed stream, to be put back with
        `p2p-interview requeue-failed-jobs` once the cause (a database outage, say) is gone."""
        if stream == ANSWER_STREAM:
            log.error("%s; kept in %s", why, FAILED_STREAM)
            kept = {**fields, b"stream": stream.encode(), b"why": why.encode()}
            await self.client.xadd(FAILED_STREAM, kept)  # type: ignore[arg-type]
        else:
            log.error("%s; dropped", why)
        await self._finish(stream, entry_id)

    async def _finish(self, stream: str, entry_id: str) -> None:
        await self.client.xack(stream, GROUP, entry_id)
        await self.client.xdel(stream, entry_id)

    async def _deliveries(self, stream: str, entry_id: str) -> int:
        pending = await self.client.xpending_range(stream, GROUP, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _keep_fresh(self, stream: str, entry_id: str) -> None:
        """Reset the job's idle time while it runs, so a long job is not taken from a live
        worker; a killed worker stops doing this and its job goes stale."""
        while True:
            await asyncio.sleep(self.reclaim_after_ms / 3000)
            with contextlib.suppress(Exception):  # (a cancel inside a Redis call may come out
                # as a connection error: the check below ends the loop all the same)
                ours = await self.client.xpending_range(
                    stream, GROUP, entry_id, entry_id, 1, consumername=self.name
                )
                if not ours:  # this worker stalled and another took the job over: let it be
                    return
                await self.client.xclaim(
                    stream, GROUP, self.name, min_idle_time=0, message_ids=[entry_id], justid=True
                )
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
