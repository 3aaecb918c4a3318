"""What a job is, the queue interface, and its in-process implementation for one node (the
Redis one is in jobs.streams)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from telemetry.metrics import Backlog

log = logging.getLogger(__name__)

MAX_DELIVERIES = 3
"""An answer job is tried this many times before it is given up on (kept as failed)."""


class JobKind(StrEnum):
    TRANSCRIBE = "transcribe"
    """The text of one live segment (partial or final); replied to."""
    ANSWER = "answer"
    """Finish an answer: transcribe what is left, store it, score it, store the score."""
    RESCORE = "rescore"
    """Score a stored answer again (its coding question's hidden tests ran after it)."""
    WARM_UP = "warm-up"
    """Load the speech and scoring models."""


KEPT = frozenset({JobKind.ANSWER, JobKind.RESCORE})
"""Jobs that store something: tried again, kept in the durable stream."""


@dataclass
class Job:
    """One piece of work: a kind, a JSON body and optional PCM."""

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

    async def backlog(self) -> list[Backlog]:
        """For /metrics: per queue, the jobs not finished and the age of the oldest."""
        ...


class LocalJobs:
    """One node: jobs run in this process, by `handler`, in the order they came."""

    def __init__(self, handler: Handler, retry_after_s: float = 5.0) -> None:
        self.handler = handler
        self.retry_after_s = retry_after_s
        self._running: set[asyncio.Task[Reply | None]] = set()
        self._submitted: dict[asyncio.Task[Reply | None], float] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._running:
            await asyncio.wait(self._running, timeout=30)

    def idle(self) -> bool:
        return not self._running

    async def status(self) -> dict[str, Any]:
        return {"queue": "in-process", "running": len(self._running)}

    async def backlog(self) -> list[Backlog]:
        now = time.monotonic()
        oldest = min(self._submitted.values(), default=now)
        return [Backlog("in-process", len(self._running), now - oldest)]

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
        self._submitted[task] = time.monotonic()
        task.add_done_callback(self._running.discard)
        task.add_done_callback(lambda done: self._submitted.pop(done, None))
        if reply_within is None:
            return None
        try:  # a reply nobody waits for is not worth computing: cancelled with its waiter
            return await asyncio.wait_for(task, reply_within)
        except TimeoutError:
            return None

    async def _run(self, job: Job) -> Reply | None:
        # An answer is worth a few tries (the database restarting, say); a live pass is not.
        tries = MAX_DELIVERIES if job.kind in KEPT else 1
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
