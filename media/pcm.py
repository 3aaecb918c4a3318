"""16 kHz mono PCM of a participant, handed to whoever transcribes it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

PCM_RATE = 16_000


@dataclass(frozen=True)
class PcmChunk:
    """Signed 16-bit little-endian mono samples at 16 kHz; `at` is the wall-clock of the first."""

    interview_id: int
    role: str
    samples: bytes
    at: float


class PcmSink(Protocol):
    def push(self, chunk: PcmChunk) -> None:
        """Take a chunk without blocking (called from the event loop, per packet)."""
        ...


class PcmQueues:
    """A bounded asyncio queue per interview; when a consumer lags, the oldest audio is dropped."""

    def __init__(self, max_chunks: int = 3000) -> None:  # 3000 x 20 ms = 60 s of audio
        self.max_chunks = max_chunks
        self._queues: dict[int, asyncio.Queue[PcmChunk]] = {}

    def queue(self, interview_id: int) -> asyncio.Queue[PcmChunk]:
        if interview_id not in self._queues:
            self._queues[interview_id] = asyncio.Queue(self.max_chunks)
        return self._queues[interview_id]

    def push(self, chunk: PcmChunk) -> None:
        queue = self.queue(chunk.interview_id)
        if queue.full():
            queue.get_nowait()
            log.warning(
                "PCM consumer for interview %s is behind; dropping audio", chunk.interview_id
            )
        queue.put_nowait(chunk)

    def discard(self, interview_id: int) -> None:
        self._queues.pop(interview_id, None)
