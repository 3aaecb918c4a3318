"""Several nodes: jobs go through Redis Streams read by the consumer group `workers`; replies
come back over the bus to the node that asked.

Two streams: live transcriptions (short-lived, trimmed: a backlog there is stale anyway) and
answers (never trimmed: each one is a stored transcript and score). A job stays pending in the
group until its worker acknowledges it (jobs.worker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bus.events import JobReply
from bus.pubsub import Bus
from jobs.queue import KEPT, Job, Reply
from telemetry.metrics import Backlog

log = logging.getLogger(__name__)

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


def stream_for(kind: str) -> str:
    return ANSWER_STREAM if kind in KEPT else LIVE_STREAM


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

    async def backlog(self) -> list[Backlog]:
        """A finished job is deleted from its stream (jobs.worker), so what a stream holds is
        queued or running; its first entry's id is the oldest one's time (Redis's clock)."""
        now = await redis_now(self.client)
        found = []
        for name, stream in (("live", LIVE_STREAM), ("answers", ANSWER_STREAM)):
            first = await self.client.xrange(stream, count=1)
            age = 0.0
            if first and first[0][0] is not None:
                age = max(0.0, now - int(entry_id_text(first[0][0]).split("-", 1)[0]) / 1000)
            found.append(Backlog(name, int(await self.client.xlen(stream)), age))
        found.append(Backlog("failed", int(await self.client.xlen(FAILED_STREAM)), 0.0))
        return found

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
        if reply_within is None:
            await self._add(stream, fields)
            return None
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        try:
            await self._add(stream, fields)
            return await asyncio.wait_for(future, reply_within)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(job_id, None)

    async def _add(self, stream: str, fields: dict[Any, Any]) -> None:
        if stream == LIVE_STREAM:  # a backlog of live jobs is stale anyway
            await self.client.xadd(stream, fields, maxlen=LIVE_STREAM_LEN, approximate=True)
        else:
            await self.client.xadd(stream, fields)

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
        reply = JobReply.decode(message)
        future = self._waiting.get(reply.job)
        if future is not None and not future.done():
            future.set_result(reply.reply)


async def redis_now(client: aioredis.Redis) -> float:
    """Redis's clock: workers and web nodes on machines whose clocks differ agree on it."""
    seconds, micros = await client.time()
    return float(seconds) + micros / 1e6


async def ensure_group(client: aioredis.Redis) -> None:
    for stream in STREAMS:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await client.xgroup_create(stream, GROUP, id="0", mkstream=True)


def decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> tuple[Job, str]:
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


async def requeue_failed(client: aioredis.Redis) -> int:
    """Put the answer jobs that were given up on back in their stream; how many."""
    moved = 0
    entries: list[tuple[bytes, dict[Any, Any]]] = await client.xrange(FAILED_STREAM)  # type: ignore[assignment]
    for entry_id, fields in entries:
        stream = fields.pop(b"stream", ANSWER_STREAM.encode())
        fields.pop(b"why", None)
        await client.xadd(entry_id_text(stream), fields)
        await client.xdel(FAILED_STREAM, entry_id)
        moved += 1
    return moved


def entry_id_text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id
