"""Deleting recordings past the retention period, hourly on each node (idempotent)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from media.storage import RecordingStorage
from rooms.db import SessionMaker
from rooms.models import utcnow
from rooms.recordings import expired

log = logging.getLogger(__name__)


async def purge_recordings(sessions: SessionMaker, storage: RecordingStorage, days: int) -> int:
    """Delete recording files and their rows older than `days`; returns how many."""
    cutoff = utcnow() - timedelta(days=days)
    async with sessions.begin() as session:
        old = await expired(session, cutoff)
        for recording in old:
            try:
                storage.resolve(recording.path).unlink(missing_ok=True)
            except ValueError:
                log.warning("recording %s has a path outside the storage folder", recording.id)
            await session.delete(recording)
    if old:
        log.info("deleted %d recordings older than %d days", len(old), days)
    return len(old)


async def retention_loop(sessions: SessionMaker, storage: RecordingStorage, days: int) -> None:
    while True:
        try:
            await purge_recordings(sessions, storage, days)
        except Exception:
            log.exception("recording retention run failed")
        await asyncio.sleep(3600)
