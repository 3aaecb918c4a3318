"""What the Redis job queue costs: the round trip of a `transcribe` job (submit, a worker takes
it, the reply comes back over pub/sub) with a handler that does no work, for the PCM sizes the
live transcriber sends (a 1 s partial up to a 12 s segment), against running in-process; what
a segment's passes write to Redis and leave there when no worker runs; and how soon the job of
a killed worker is taken over.

Run: .venv/bin/python bench/job_queue.py [--jobs 200] [--redis redis://127.0.0.1:6379/14]
(the Redis database given is emptied first).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bus.pubsub import RedisBus  # noqa: E402
from jobs.queue import (
    Job,  # noqa: E402
    LocalJobs,  # noqa: E402
)
from jobs.streams import RedisJobs  # noqa: E402
from jobs.worker import StreamWorker  # noqa: E402


async def echo(job: Job) -> dict[str, object]:
    return {"bytes": len(job.pcm)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def round_trips(jobs: LocalJobs | RedisJobs, count: int, seconds: float) -> list[float]:
    pcm = b"\x01\x00" * int(16000 * seconds)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        reply = await jobs.submit("transcribe", {"partial": True}, pcm, reply_within=10)
        assert reply == {"bytes": len(pcm)}
        times.append((time.perf_counter() - started) * 1000)
    return times


async def one_segment(jobs: RedisJobs, growing: str | None) -> tuple[int, list[float]]:
    """A 12 s segment spoken with a partial pass each second, then its final pass: the PCM
    bytes written to Redis and each pass's round trip (ms)."""
    speech = bytes(range(256)) * (32000 * 12 // 256)
    sent_before = jobs.audio_bytes_sent
    times = []
    for n in [*range(1, 13), 12]:
        pcm = speech[: 32000 * n]
        started = time.perf_counter()
        reply = await jobs.submit("transcribe", {}, pcm, reply_within=10, growing=growing)
        assert reply == {"bytes": len(pcm)}
        times.append((time.perf_counter() - started) * 1000)
    return jobs.audio_bytes_sent - sent_before, times


async def backlog_memory(client: aioredis.Redis, bus: RedisBus, growing: bool) -> int:
    """Redis memory taken by the partial passes of ten candidates' 12 s segments that no
    worker takes (the live stream keeps up to 1,000 entries)."""
    await client.flushdb()
    jobs = RedisJobs(client, bus)
    await jobs.start()
    before = int((await client.info("memory"))["used_memory"])
    speech = bytes(range(256)) * (32000 * 12 // 256)
    for candidate in range(10):
        for n in range(1, 13):
            body = {"deadline": time.time() + 3}
            name = f"c{candidate}" if growing else None
            await jobs.submit("transcribe", body, speech[: 32000 * n], growing=name)
    used = int((await client.info("memory"))["used_memory"]) - before
    await client.flushdb()
    return used


async def reclaim_delay(client: aioredis.Redis, bus: RedisBus, reclaim_s: float) -> float:
    """A worker takes a job and dies (its task is cancelled, so it never acknowledges); how
    long until a second worker has run it."""
    started_job = asyncio.Event()
    finished: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def hangs(job: Job) -> None:
        started_job.set()
        await asyncio.sleep(3600)

    async def finishes(job: Job) -> None:
        if not finished.done():
            finished.set_result(time.perf_counter())

    jobs = RedisJobs(client, bus)
    await jobs.start()
    doomed = StreamWorker(client, bus, hangs, name="doomed", reclaim_after_s=reclaim_s)
    doomed.start()
    await jobs.submit("answer", {"n": 1}, b"")
    await started_job.wait()
    assert doomed._task is not None
    doomed._task.cancel()  # as good as SIGKILL: no acknowledgement, no keep-alive
    killed = time.perf_counter()
    survivor = StreamWorker(client, bus, finishes, name="survivor", reclaim_after_s=reclaim_s)
    survivor.start()
    done_at = await asyncio.wait_for(finished, reclaim_s * 4 + 5)
    await survivor.stop()
    await jobs.stop()
    return done_at - killed


async def main_async(count: int, url: str) -> None:
    client = aioredis.from_url(url)
    await client.flushdb()
    bus = RedisBus(client)
    local = LocalJobs(echo)
    remote = RedisJobs(client, bus)
    await remote.start()
    worker = StreamWorker(client, bus, echo, name="bench")
    worker.start()
    print(f"round trip of a transcribe job with a no-op handler, {count} jobs each (ms)")
    print("| PCM | in-process p50 / p99 | Redis stream + pub/sub reply p50 / p99 |")
    print("|---|---|---|")
    for seconds in (1.0, 4.0, 12.0):
        near = await round_trips(local, count, seconds)
        far = await round_trips(remote, count, seconds)
        print(
            f"| {seconds:g} s ({int(seconds * 32)} KiB) | {statistics.median(near):.2f} / "
            f"{percentile(near, 99):.2f} | {statistics.median(far):.2f} / "
            f"{percentile(far, 99):.2f} |"
        )
    whole, whole_ms = await one_segment(remote, None)
    grown, grown_ms = await one_segment(remote, "segment")
    print(
        "a 12 s segment, a partial pass each second and a final one: PCM written to Redis "
        f"{whole / 1024:.0f} KiB sending each pass whole (pass p50 {statistics.median(whole_ms):.2f}"
        f" ms, max {max(whole_ms):.2f}), {grown / 1024:.0f} KiB sending only new audio (pass p50 "
        f"{statistics.median(grown_ms):.2f} ms, max {max(grown_ms):.2f})"
    )
    await worker.stop()
    await remote.stop()
    for growing in (False, True):
        used = await backlog_memory(client, bus, growing)
        how = "only new audio" if growing else "each pass whole"
        print(f"no worker, 10 candidates' 12 s segments queued ({how}): {used / 2**20:.1f} MiB")
    for reclaim_s in (1.0, 3.0):
        delay = await reclaim_delay(client, bus, reclaim_s)
        print(
            f"job of a killed worker run by another: {delay:.2f} s after the kill "
            f"(JOB_RECLAIM_S={reclaim_s:g})"
        )
    await client.flushdb()
    await bus.close()
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    asyncio.run(main_async(args.jobs, args.redis))


if __name__ == "__main__":
    main()
