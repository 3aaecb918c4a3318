"""Keeps the database's record of recording segments in step with the media server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from bus.events import RecordingChanged, publish_event
from bus.pubsub import Bus
from media.recorder import Segment
from media.storage import RecordingStorage
from rooms.db import SessionMaker
from rooms.recordings import start_segment, update_segment
from telemetry.logs import working_on

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SegmentReport:
    live: Segment
    """The recorder's own segment (its database id is set once the row exists)."""
    snapshot: Segment
    """Its state when the report was made."""


@dataclass(frozen=True)
class _StateReport:
    interview_id: int
    role: str
    active: bool


class RecordingJournal:
    """Segment reports arrive per packet batch (sync); one task writes them in order."""

    def __init__(self, sessions: SessionMaker, storage: RecordingStorage, bus: Bus) -> None:
        self.sessions = sessions
        self.storage = storage
        self.bus = bus
        self._queue: asyncio.Queue[_SegmentReport | _StateReport] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def record(self, segment: Segment) -> None:
        """Called by the recorder when a segment opens, grows or closes."""
        snapshot = Segment(**segment.__dict__)
        self._queue.put_nowait(_SegmentReport(segment, snapshot))

    def state(self, interview_id: int, role: str, active: bool) -> None:
        """Called when a participant's recording connection comes up or goes down."""
        self._queue.put_nowait(_StateReport(interview_id, role, active))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recording-journal")

    async def stop(self) -> None:
        await self._queue.join()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def flush(self) -> None:
        """Wait until every report so far is in the database (for tests and shutdown)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            report = await self._queue.get()
            working_on(
                report.snapshot.interview_id
                if isinstance(report, _SegmentReport)
                else report.interview_id
            )
            try:
                if isinstance(report, _SegmentReport):
                    await self._write(report.live, report.snapshot)
                else:
                    await publish_event(
                        self.bus, report.interview_id, RecordingChanged(report.role, report.active)
                    )
            except Exception:
                log.exception("could not record a recording change")
            finally:
                self._queue.task_done()

    async def _write(self, live: Segment, snapshot: Segment) -> None:
        async with self.sessions.begin() as session:
            if live.id is None:
                row = await start_segment(
                    session,
                    snapshot.interview_id,
                    snapshot.role,
                    self.storage.relative(snapshot.path),
                    snapshot.started_at,
                )
                live.id = row.id
            closed = datetime.now(UTC) if snapshot.closed else None
            await update_segment(
                session, live.id, snapshot.duration_s, closed, snapshot.lost_s, snapshot.gaps
            )
