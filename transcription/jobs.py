"""Speech jobs: run in-process on one node, or through a Redis Streams consumer group that
`p2p-interview worker` processes serve.

A job is a kind, a JSON body and optional PCM. Some jobs want a reply (the text of a live
segment); others only have effects (an answer stored and scored), written idempotently so that
at-least-once delivery is safe. With Redis, a job stays pending in the group until its worker
acknowledges it; a worker keeps its running job fresh, and the jobs of a worker that died go
stale and are reclaimed by another one (XAUTOCLAIM).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from signaling.bus import Bus

log = logging.getLogger(__name__)

# Two streams: live transcriptions (short-lived, trimmed: a backlog there is stale anyway) and
# answers (never trimmed: each one is a stored transcript and score).
LIVE_STREAM = "p2pi:jobs:live"
ANSWER_STREAM = "p2pi:jobs:answers"
STREAMS = (LIVE_STREAM, ANSWER_STREAM)
FAILED_STREAM = "p2pi:jobs:failed"
WORKERS = "p2pi:jobs:workers"  # sorted set: worker name -> when it was last seen alive
LIVE_STREAM_LEN = 1_000
AUDIO_KEY = "p2pi:jobs:audio:"  # + a growing segment's id: its PCM so far
AUDIO_TTL_S = 120  # long past any live job's deadline
AUDIO_DONE_S = 30  # a finished segment's audio, for jobs still queued
GROUP = "workers"
MAX_DELIVERIES = 3


def stream_for(kind: str) -> str:
    return ANSWER_STREAM if kind == "answer" else LIVE_STREAM


@dataclass
class Job:
    id: str
    kind: str
    body: dict[str, Any]
    pcm: bytes = b""

    @property
    def expired(self) -> bool:
        deadline = self.body.get("deadline")
        return deadline is not None and time.time() > float(deadline)


Reply = dict[str, Any]
Handler = Callable[[Job], Awaitable[Reply | None]]


class JobQueue(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(
        self,
        kind: str,
        body: dict[str, Any],
        pcm: bytes = b"",
        reply_within: float | None = None,
        growing: str | None = None,
    ) -> Reply | None:
        """Queue a job. With `reply_within`, wait that many seconds for its reply (None if
        none came); without, return at once and let the job run on its own. `growing` names
        audio that successive jobs send again with more at its end (a segment being spoken):
        a queue that ships audio elsewhere sends only what is new."""
        ...

    def idle(self) -> bool:
        """True when no job submitted here is still running in this process."""
        ...

    async def status(self) -> dict[str, Any]:
        """For operators (/healthz): where jobs run and how many wait."""
        ...


class LocalJobs:
    """One node: jobs run in this process, by `handler`, in the order they came."""

    def __init__(self, handler: Handler, retry_after_s: float = 5.0) -> None:
        self.handler = handler
        self.retry_after_s = retry_after_s
        self._running: set[asyncio.Task[Reply | None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._running:
            await asyncio.wait(self._running, timeout=30)

    def idle(self) -> bool:
        return not self._running

    async def status(self) -> dict[str, Any]:
        return {"queue": "in-process", "running": len(self._running)}

    async def submit(
        self,
        kind: str,
        body: dict[str, Any],
        pcm: bytes = b"",
        reply_within: float | None = None,
        growing: str | None = None,
    ) -> Reply | None:
        job = Job(uuid.uuid4().hex, kind, body, pcm)
        task = asyncio.create_task(self._run(job), name=f"job-{kind}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        if reply_within is None:
            return None
        try:  # a reply nobody waits for is not worth computing: cancelled with its waiter
            return await asyncio.wait_for(task, reply_within)
        except TimeoutError:
            return None

    async def _run(self, job: Job) -> Reply | None:
        # An answer is worth a few tries (the database restarting, say); a live pass is not.
        tries = MAX_DELIVERIES if job.kind == "answer" else 1
        for attempt in range(1, tries + 1):
            if job.expired:
                return None
            try:
                return await self.handler(job)
            except Exception:
                log.exception("%s job failed (try %d of %d)", job.kind, attempt, tries)
            if attempt < tries:
                await asyncio.sleep(self.retry_after_s * attempt)
        return None


def reply_channel(node: str) -> str:
    return f"p2pi:jobs:reply:{node}"


@dataclass
class _Upload:
    """A growing segment's audio as far as it is in Redis."""

    key: str
    sent: bytearray
    lock: asyncio.Lock
    used: float


class RedisJobs:
    """Several nodes: jobs go into a Redis stream; replies come back on this node's channel.

    The audio of a segment being spoken is sent once: each partial pass re-transcribes the
    whole segment so far, but only the audio added since the previous pass goes to Redis (into
    a key that expires), and the job names the key and how many bytes to read.
    """

    def __init__(self, client: aioredis.Redis, bus: Bus, node: str | None = None) -> None:
        self.client = client
        self.bus = bus
        self.node = node or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._waiting: dict[str, asyncio.Future[Reply]] = {}
        self._uploads: dict[str, _Upload] = {}
        self.audio_bytes_sent = 0
        """PCM bytes written to Redis, in jobs and in growing segments (for benchmarks)."""

    async def start(self) -> None:
        await ensure_group(self.client)
        await self.bus.subscribe(reply_channel(self.node), self._on_reply)

    async def stop(self) -> None:
        await self.bus.unsubscribe(reply_channel(self.node), self._on_reply)

    def idle(self) -> bool:
        return not self._waiting

    async def status(self) -> dict[str, Any]:
        """Jobs waiting per stream, and the workers seen polling in the last 5 seconds."""
        waiting = {
            "live": int(await self.client.xlen(LIVE_STREAM)),
            "answers": int(await self.client.xlen(ANSWER_STREAM)),
            "failed answers": int(await self.client.xlen(FAILED_STREAM)),
        }
        workers = await self.client.zcount(WORKERS, await redis_now(self.client) - 5, "+inf")
        return {"queue": "redis", "waiting": waiting, "workers": int(workers)}

    async def submit(
        self,
        kind: str,
        body: dict[str, Any],
        pcm: bytes = b"",
        reply_within: float | None = None,
        growing: str | None = None,
    ) -> Reply | None:
        job_id = uuid.uuid4().hex
        if growing is not None and pcm:
            body = {**body, "audio": await self._upload(growing, pcm)}
            pcm = b""
        self.audio_bytes_sent += len(pcm)
        fields: dict[Any, Any] = {
            "id": job_id,
            "kind": kind,
            "body": json.dumps(body, separators=(",", ":")),
            "pcm": pcm,
            "reply_to": reply_channel(self.node) if reply_within is not None else "",
        }
        stream = stream_for(kind)
        trim = {"maxlen": LIVE_STREAM_LEN, "approximate": True} if stream == LIVE_STREAM else {}
        if reply_within is None:
            await self.client.xadd(stream, fields, **trim)
            return None
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        try:
            await self.client.xadd(stream, fields, **trim)
            return await asyncio.wait_for(future, reply_within)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(job_id, None)

    async def _upload(self, name: str, pcm: bytes) -> dict[str, Any]:
        """Write what Redis lacks of `pcm` (all of it when it does not continue the audio sent
        under `name`); the key and length a worker reads it back with."""
        now = time.monotonic()
        for stale in [n for n, u in self._uploads.items() if now - u.used > AUDIO_TTL_S / 2]:
            del self._uploads[stale]
        upload = self._uploads.get(name)
        common = min(len(pcm), len(upload.sent)) if upload else 0
        done = None
        if upload is None or pcm[:common] != upload.sent[:common]:
            # A new segment: a key of its own. (The same one cut shorter reads less of it.)
            done = upload
            upload = _Upload(AUDIO_KEY + uuid.uuid4().hex, bytearray(), asyncio.Lock(), now)
            self._uploads[name] = upload
        upload.used = now
        if done is not None:  # the last jobs reading the old segment are due within seconds
            await self.client.expire(done.key, AUDIO_DONE_S)
        # One write at a time per segment, so a job is queued only once all it reads is there.
        async with upload.lock:
            offset = len(upload.sent)
            new = pcm[offset:]
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.strlen(upload.key)
                if new:
                    pipe.setrange(upload.key, offset, new)
                pipe.expire(upload.key, AUDIO_TTL_S)
                had = (await pipe.execute())[0]
            if had < offset:  # (more: a cancelled pass had written some of the same bytes)
                # Redis lost the key (restarted empty): the write padded it with zeros. Send
                # the whole audio again under a new key.
                log.warning("the audio of a live segment was gone from Redis; sending it again")
                await self.client.delete(upload.key)  # zeros and a tail: of no use
                upload.key, upload.sent = AUDIO_KEY + uuid.uuid4().hex, bytearray()
                offset, new = 0, pcm
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.setrange(upload.key, 0, new)
                    pipe.expire(upload.key, AUDIO_TTL_S)
                    await pipe.execute()
            upload.sent += new
            self.audio_bytes_sent += len(new)
        return {"key": upload.key, "bytes": len(pcm)}

    async def _on_reply(self, message: dict[str, Any]) -> None:
        future = self._waiting.get(str(message.get("job")))
        if future is not None and not future.done():
            future.set_result(message.get("reply") or {})


async def redis_now(client: aioredis.Redis) -> float:
    """Redis's clock: workers and web nodes on machines whose clocks differ agree on it."""
    seconds, micros = await client.time()
    return float(seconds) + micros / 1e6


async def ensure_group(client: aioredis.Redis) -> None:
    for stream in STREAMS:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await client.xgroup_create(stream, GROUP, id="0", mkstream=True)


def _decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> tuple[Job, str]:
    def text(key: str) -> str:
        value = fields.get(key.encode(), b"")
        return value.decode() if isinstance(value, bytes) else str(value)

    job = Job(
        text("id") or str(entry_id),
        text("kind"),
        json.loads(text("body") or "{}"),
        fields.get(b"pcm", b""),
    )
    return job, text("reply_to")


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
            self._cursors[stream] = _id(cursor)
            for entry_id, fields in claimed:
                if fields:  # a deleted entry comes back empty
                    return [(stream, _id(entry_id), fields, True)]
                await self.client.xack(stream, GROUP, entry_id)
        found = await self.client.xreadgroup(
            GROUP, self.name, dict.fromkeys(STREAMS, ">"), count=1, block=1000
        )
        return [
            (_id(stream), _id(entry_id), fields, False)
            for stream, entries in found or []
            for entry_id, fields in entries
        ]

    async def _handle(
        self, stream: str, entry_id: str, fields: dict[bytes, bytes], reclaimed: bool
    ) -> None:
        try:
            job, reply_to = _decode(entry_id, fields)
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
        try:
            reply = await self.handler(job)
        except Exception:
            # Left pending: another delivery is tried after `reclaim_after_s`.
            log.exception("worker %s: %s job %s failed", self.name, job.kind, job.id)
            return
        if reply_to:
            await self.bus.publish(reply_to, {"job": job.id, "reply": reply or {}})
        await self._finish(stream, entry_id)
        self.done += 1

    async def _read_audio(self, audio: dict[str, Any]) -> bytes:
        key, size = str(audio.get("key", "")), audio.get("bytes")
        if not key.startswith(AUDIO_KEY) or not isinstance(size, int) or size <= 0:
            return b""
        return bytes(await self.client.getrange(key, 0, size - 1))

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


async def requeue_failed(client: aioredis.Redis) -> int:
    """Put the answer jobs that were given up on back in their stream; how many."""
    moved = 0
    for entry_id, fields in await client.xrange(FAILED_STREAM):
        stream = fields.pop(b"stream", ANSWER_STREAM.encode())
        fields.pop(b"why", None)
        await client.xadd(_id(stream), fields)
        await client.xdel(FAILED_STREAM, entry_id)
        moved += 1
    return moved


def _id(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id
