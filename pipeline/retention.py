"""Deleting recordings past the retention period, hourly on each node (idempotent)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from media.storage import BadKey, RecordingStorage, StorageUnavailable
from rooms.db import SessionMaker
from rooms.models import utcnow
from rooms.recordings import expired

log = logging.getLogger(__name__)


async def purge_recordings(sessions: SessionMaker, storage: RecordingStorage, days: int) -> int:
    """Delete recording files and their rows older than `days`; returns how many."""
    cutoff = utcnow() - timedelta(days=days)
    async with sessions.begin() as session:
        old = await expired(session, cutoff)
        deleted = 0
        for recording in old:
            try:
                await storage.delete(recording.path)
            except BadKey:
                log.warning("recording %s has a path that is not a segment's name", recording.id)
            except StorageUnavailable as exc:
                # Kept: the row is what lets the next run find the file again.
                log.warning("recording %s not deleted this run: %s", recording.id, exc)
                continue
            await session.delete(recording)
            deleted += 1
    if deleted:
        log.info("deleted %d recordings older than %d days", deleted, days)
    return deleted


async def retention_loop(sessions: SessionMaker, storage: RecordingStorage, days: int) -> None:
    while True:
        try:
            await purge_recordings(sessions, storage, days)
        except Exception:
            log.exception("recording retention run failed")
        await asyncio.sleep(3600)
