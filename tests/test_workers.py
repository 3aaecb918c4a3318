"""Speech jobs through Redis Streams and `p2p-interview worker` processes: a worker killed in the
middle of a transcription loses nothing, and the answer is stored once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from bus.events import room_channel
from bus.pubsub import RedisBus
from jobs.queue import MAX_DELIVERIES, Job
from jobs.streams import (
    ANSWER_STREAM,
    FAILED_STREAM,
    GROUP,
    LIVE_STREAM,
    RedisJobs,
    requeue_failed,
)
from jobs.worker import StreamWorker
from pipeline.work import answer_body
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Answer, Score
from tests.conftest import ROOT
from tests.rtc import decode_to_pcm, espeak
from tests.seed import _seed
from tests.wer import wer
from transcription.live import AnswerSoFar, Piece

# Long enough that transcribing it takes a few seconds even on a fast machine.
SPOKEN = (
    "A Python list is a dynamic array of references, so indexing is constant time and "
    "appending is amortised constant time, while inserting at the front shifts every element. "
    "A tuple is immutable and hashable when its items are, so it can be a dictionary key. "
    "A set is a hash table without values, which makes membership tests constant time on "
    "average. When order matters and you pop from both ends, use a deque from collections, "
    "because it is a doubly linked list of blocks and both ends are cheap."
)
ALREADY_TRANSCRIBED = "Let me compare the three containers."


def start_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", "--name", name],
        env={**os.environ, "LOG_LEVEL": "INFO", **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


async def wait_for_line(
    log: Path, text: str, process: subprocess.Popen[bytes], limit: float = 90
) -> None:
    deadline = time.monotonic() + limit
    while text not in (seen := await asyncio.to_thread(log.read_text, errors="replace")):
        if process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{seen}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in the worker's log:\n{seen}")
        await asyncio.sleep(0.02)


async def stored(url: str, interview_id: int) -> tuple[list[Answer], list[Score]]:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        answers = list(
            await session.scalars(select(Answer).where(Answer.interview_id == interview_id))
        )
        scores = list(
            await session.scalars(select(Score).where(Score.interview_id == interview_id))
        )
    await engine.dispose()
    return answers, scores


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_killed_workers_job_is_finished_by_another_and_stored_once(
    db: str, redis_url: str, tmp_path: Path
) -> None:
    seeded = await _seed(db, "kill@example.com", "a long pass phrase", "python-backend")
    interview_id = seeded.interview_id
    pcm = decode_to_pcm(espeak(tmp_path / "answer.wav", SPOKEN, speed=160))
    env = {"DATABASE_URL": db, "REDIS_URL": redis_url, "JOB_RECLAIM_S": "2"}

    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    events: list[dict[str, Any]] = []

    async def on_event(message: dict[str, Any]) -> None:
        # Only events for pages: presence and relayed messages share the channel.
        if "data" in message.get("message", {}):
            events.append(message["message"])

    await bus.subscribe(room_channel(interview_id), on_event)
    jobs = RedisJobs(client, bus)
    await jobs.start()
    now = time.time()
    said = AnswerSoFar(1, now - 40)
    said.pieces = [
        Piece(now - 40, now - 38, ALREADY_TRANSCRIBED),
        Piece(now - 37, now, None, pcm),
    ]
    body, audio = answer_body(interview_id, said, now)

    first_log, second_log = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    first = start_worker("a", env, first_log)
    second = None
    try:
        await wait_for_line(first_log, "worker a ready", first)
        await jobs.submit("answer", body, audio)
        await wait_for_line(first_log, f"transcribing interview {interview_id} question 1", first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        answers, _ = await stored(db, interview_id)
        assert answers == [], "the killed worker should not have got as far as storing"
        pending = await client.xpending(ANSWER_STREAM, GROUP)
        assert pending["pending"] == 1 and pending["consumers"][0]["name"] == b"a"

        second = start_worker("b", env, second_log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answers, scores = await stored(db, interview_id)
            if scores:
                break
            await asyncio.sleep(0.2)
        assert "reclaimed answer job" in second_log.read_text()
        assert len(answers) == 1 and len(scores) == 1
        answer = answers[0]
        error = wer(f"{ALREADY_TRANSCRIBED} {SPOKEN}", answer.text)
        print(f"\nafter the reclaim: WER {error:.2f}, score {scores[0].score}: {answer.text}")
        assert answer.text.startswith(ALREADY_TRANSCRIBED) and error < 0.5
        assert [s["text"] for s in answer.segments][0] == ALREADY_TRANSCRIBED
        assert answer.engine == "faster-whisper"
        for _ in range(50):  # the acknowledgement follows the last event
            if (await client.xpending(ANSWER_STREAM, GROUP))["pending"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (await client.xpending(ANSWER_STREAM, GROUP))["pending"] == 0
        assert await client.xlen(ANSWER_STREAM) == 0
        names = [e["name"] for e in events if e["data"].get("position") == 1]
        assert names.count("score") == 1 and names.count("transcript") == 1

        # At least once: the same job delivered again updates the same rows.
        await jobs.submit("answer", body, audio)
        for _ in range(300):
            if [e for e in events if e["name"] == "score"][1:]:
                break
            await asyncio.sleep(0.1)
        answers, scores = await stored(db, interview_id)
        assert len(answers) == 1 and len(scores) == 1
        assert answers[0].text == answer.text and answers[0].updated_at >= answer.updated_at
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(20)
        await jobs.stop()
        await bus.close()
        await client.aclose()


@pytest.mark.parametrize("command", ["worker", "requeue-failed-jobs"])
def test_the_queue_commands_need_redis(tmp_path: Path, command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", command],
        env={**os.environ, "REDIS_URL": "", "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "set REDIS_URL" in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_worker_stops_cleanly_on_sigterm(db: str, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    process = start_worker("t", {"DATABASE_URL": db, "REDIS_URL": redis_url}, log)
    try:
        await wait_for_line(log, "worker t ready", process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()


async def test_the_queue_replies_drops_stale_partials_and_gives_up_on_a_failing_job(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    calls: list[str] = []

    database_down = True

    async def handler(job: Job) -> dict[str, Any] | None:
        calls.append(job.kind)
        if job.kind == "boom" or (job.kind == "answer" and database_down):
            raise RuntimeError("this job fails")
        return {"echo": job.body["n"], "bytes": len(job.pcm)}

    jobs = RedisJobs(client, bus)
    await jobs.start()
    worker = StreamWorker(client, bus, handler, name="t", reclaim_after_s=0.3)
    await client.delete(FAILED_STREAM)
    worker.start()
    try:
        reply = await jobs.submit("transcribe", {"n": 7}, b"\x01\x02" * 10, reply_within=10)
        assert reply == {"echo": 7, "bytes": 20}
        stale = {"n": 1, "deadline": time.time() - 1}
        assert await jobs.submit("transcribe", stale, reply_within=1.5) is None
        await jobs.submit("boom", {"n": 2})
        for _ in range(100):
            if await client.xlen(LIVE_STREAM) == 0 and calls.count("boom") >= MAX_DELIVERIES:
                break
            await asyncio.sleep(0.1)
        assert calls.count("transcribe") == 1, "the stale partial should not have run"
        assert calls.count("boom") == MAX_DELIVERIES  # then given up, not retried forever
        assert await client.xlen(LIVE_STREAM) == 0
        assert (await client.xpending(LIVE_STREAM, GROUP))["pending"] == 0
        assert await client.xlen(FAILED_STREAM) == 0  # a live job is not worth keeping

        # An answer job that keeps failing is kept aside, and put back once the cause is gone.
        await jobs.submit("answer", {"n": 3}, b"\x05" * 8)
        for _ in range(300):  # three deliveries, each reclaimed: room for a loaded machine
            if await client.xlen(FAILED_STREAM):
                break
            await asyncio.sleep(0.1)
        assert calls.count("answer") == MAX_DELIVERIES
        [(_, kept)] = await client.xrange(FAILED_STREAM)
        assert kept[b"why"] == b"answer job failed 3 times" and kept[b"pcm"] == b"\x05" * 8
        assert await client.xlen(ANSWER_STREAM) == 0
        database_down = False
        assert await requeue_failed(client) == 1
        for _ in range(50):
            if calls.count("answer") > MAX_DELIVERIES and await client.xlen(ANSWER_STREAM) == 0:
                break
            await asyncio.sleep(0.1)
        assert calls.count("answer") == MAX_DELIVERIES + 1
        assert await client.xlen(FAILED_STREAM) == 0 and await client.xlen(ANSWER_STREAM) == 0

        # Redis restarted empty: the worker recreates the streams and goes on.
        await client.flushdb()
        reply = await jobs.submit("transcribe", {"n": 9}, b"", reply_within=15)
        assert reply == {"echo": 9, "bytes": 0}
    finally:
        await worker.stop()
        await jobs.stop()
        await bus.close()
        await client.aclose()


async def test_a_stale_job_behind_many_running_ones_is_found(redis_url: str) -> None:
    """XAUTOCLAIM looks at 10 pending entries per call: the worker walks the pending list, so a
    dead worker's job queued behind eleven that are still running is still taken over."""
    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    jobs = RedisJobs(client, bus)
    await jobs.start()
    for n in range(12):
        await jobs.submit("answer", {"n": n})
    taken = await client.xreadgroup(GROUP, "busy", {ANSWER_STREAM: ">"}, count=12)
    ids = [entry_id for entry_id, _ in taken[0][1]]

    async def keep_running() -> None:  # a live worker refreshing its first eleven jobs
        while True:
            await client.xclaim(
                ANSWER_STREAM, GROUP, "busy", min_idle_time=0, message_ids=ids[:11], justid=True
            )
            await asyncio.sleep(0.1)

    handled: list[int] = []

    async def handler(job: Job) -> None:
        handled.append(job.body["n"])

    refresher = asyncio.create_task(keep_running())
    # Reclaim after 2 s: a stall of the refresher (same event loop) must not look like death.
    worker = StreamWorker(client, bus, handler, name="rescuer", reclaim_after_s=2.0)
    worker.start()
    try:
        for _ in range(150):
            if handled:
                break
            await asyncio.sleep(0.1)
        assert handled == [11]
    finally:
        refresher.cancel()
        await worker.stop()
        await jobs.stop()
        await bus.close()
        await client.aclose()


async def test_a_growing_segment_goes_to_redis_once(redis_url: str) -> None:
    """Each partial pass sends the whole segment so far; only what is new is written to Redis,
    and the worker reads back exactly the audio of each job, even when passes overlap."""
    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    seen: list[bytes] = []

    async def handler(job: Job) -> dict[str, Any]:
        seen.append(job.pcm)
        return {"bytes": len(job.pcm)}

    jobs = RedisJobs(client, bus)
    await jobs.start()
    worker = StreamWorker(client, bus, handler, name="g")
    worker.start()
    speech = os.urandom(32_000 * 6)  # six seconds of 16 kHz 16-bit "audio"
    try:
        passes = [speech[: 32_000 * n] for n in range(1, 7)]
        for pcm in passes:
            reply = await jobs.submit("transcribe", {}, pcm, reply_within=10, growing="i-1")
            assert reply == {"bytes": len(pcm)}
        assert seen == passes
        assert jobs.audio_bytes_sent == len(speech)  # not 1 + 2 + ... + 6 seconds

        # The segment is cut a little before its end: the final pass reads a prefix, no upload.
        seen.clear()
        cut = speech[: 32_000 * 5 + 100]
        assert await jobs.submit("transcribe", {}, cut, reply_within=10, growing="i-1")
        assert seen == [cut] and jobs.audio_bytes_sent == len(speech)

        # The next segment starts afresh; passes that overlap still each read their own audio.
        seen.clear()
        second = os.urandom(32_000 * 4)
        overlapping = [second[: 8_000 * n] for n in range(1, 17)]
        replies = await asyncio.gather(
            *(jobs.submit("t", {}, p, reply_within=10, growing="i-1") for p in overlapping)
        )
        assert replies == [{"bytes": len(p)} for p in overlapping]
        assert sorted(seen, key=len) == overlapping
        assert jobs.audio_bytes_sent == len(speech) + len(second)
        # Another interview's segment does not disturb this one.
        other = os.urandom(16_000)
        assert await jobs.submit("t", {}, other, reply_within=10, growing="i-2")
        assert seen[-1] == other
        keys = [key async for key in client.scan_iter("p2pi:jobs:audio:*")]
        assert len(keys) == 3
        assert all(0 < ttl <= 120 for ttl in [await client.ttl(key) for key in keys])

        # Redis lost the audio (restarted empty): the next pass sends all of it again.
        for key in keys:
            await client.delete(key)
        longer = other + os.urandom(3_200)
        assert await jobs.submit("t", {}, longer, reply_within=10, growing="i-2")
        assert seen[-1] == longer
        # A job whose audio is gone by the time a worker takes it is dropped: no wrong reply.
        seen.clear()
        lost = {"audio": {"key": "p2pi:jobs:audio:lost", "bytes": 640}}
        await client.xadd(LIVE_STREAM, {"id": "lost", "kind": "t", "body": json.dumps(lost)})
        for _ in range(30):
            if await client.xlen(LIVE_STREAM) == 0:
                break
            await asyncio.sleep(0.1)
        assert seen == [] and await client.xlen(LIVE_STREAM) == 0

        # A pass cancelled on its way (the segment was committed meanwhile) spoils nothing.
        third = os.urandom(32_000 * 3)
        for delay in (0, 0.0005, 0.001, 0.002):
            cancelled = asyncio.create_task(
                jobs.submit("t", {}, third[: 32_000 + int(delay * 1e7)], growing="i-3")
            )
            await asyncio.sleep(delay)
            cancelled.cancel()
        assert await jobs.submit("t", {}, third, reply_within=10, growing="i-3")
        assert seen[-1] == third
    finally:
        await worker.stop()
        await jobs.stop()
        await bus.close()
        await client.aclose()
