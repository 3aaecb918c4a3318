"""One participant's recording: Opus packets into Ogg segments, and 16 kHz PCM when needed."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import av

from media.oggopus import SAMPLE_RATE, OggOpusWriter, packet_samples
from media.opus_fec import FecRepair, frame_samples
from media.pcm import PCM_RATE, PcmChunk, PcmSink
from telemetry.metrics import LOST_AUDIO_SECONDS

log = logging.getLogger(__name__)

MAX_GAP_FILL_S = 600  # longer silences (a muted, paused sender) start a new segment instead
MARKED_GAP_S = 0.25
"""Lost audio of at least this length (losses less than MERGE_GAPS_S apart counted as one) is
marked on the results page's timeline; shorter losses only count in `lost_s`."""
MERGE_GAPS_S = 0.5
MAX_MARKED_GAPS = 500


@dataclass
class Segment:
    """What the database needs to know about a segment, reported as it changes."""

    interview_id: int
    role: str
    index: int
    path: Path
    started_at: datetime
    duration_s: float = 0.0
    closed: bool = False
    id: int | None = None
    lost_s: float = 0.0
    """Audio that never arrived (lost packets), written as silence."""
    gaps: list[tuple[float, float]] = field(default_factory=list)
    """(seconds into the segment, length) of each loss worth marking (see MARKED_GAP_S)."""


SegmentListener = Callable[[Segment], None]


class PcmDecoder:
    """Opus packets to 16 kHz mono s16, for transcription; TOC-only packets become silence."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("opus", "r")
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=PCM_RATE)

    def decode(self, payload: bytes) -> bytes:
        if len(payload) <= 1:
            return b"\x00\x00" * (packet_samples(payload) // 3)
        out = bytearray()
        try:
            for frame in self._decoder.decode(av.Packet(payload)):
                for resampled in self._resampler.resample(frame):
                    out += bytes(resampled.planes[0])[: resampled.samples * 2]
        except av.error.FFmpegError:
            return b"\x00\x00" * (packet_samples(payload) // 3)
        return bytes(out)


class ParticipantRecorder:
    """Keeps one participant's audio across reconnects: each connection is a new segment."""

    def __init__(
        self,
        interview_id: int,
        role: str,
        segment_path: Callable[[int], Path],
        on_segment: SegmentListener,
        pcm_sink: PcmSink | None = None,
        first_segment: int = 0,
    ) -> None:
        self.interview_id = interview_id
        self.role = role
        self._segment_path = segment_path
        self._on_segment = on_segment
        self._pcm_sink = pcm_sink
        self._next_index = first_segment
        self.segment: Segment | None = None
        self._writer: OggOpusWriter | None = None
        self._decoder: PcmDecoder | None = None
        self._next_ts = 0
        self._last_report = 0.0
        self.packets = 0
        self.lost_samples = 0
        self.rebuilt_samples = 0
        """Lost audio rebuilt from the next packet's FEC copy (not counted in lost_samples)."""
        self._fec: FecRepair | None = None
        self._previous: bytes | None = None
        self._losses: list[tuple[float, float]] = []
        self._marked: list[tuple[float, float]] = []

    def on_packet(self, timestamp: int, payload: bytes, arrival: float | None = None) -> None:
        """One RTP packet of this participant's Opus stream (timestamp in 48 kHz units)."""
        now = arrival if arrival is not None else time.time()
        if self._writer is None:
            self._open(timestamp, now)
        assert self._writer is not None and self.segment is not None
        delta = (timestamp - self._next_ts) & 0xFFFFFFFF
        if delta >= 0x80000000:
            return  # late or duplicate: its time is already written
        if delta:
            if delta > MAX_GAP_FILL_S * SAMPLE_RATE:
                self.end_segment()
                self.on_packet(timestamp, payload, now)
                return
            rebuilt = self._rebuild(payload, delta)
            silent = delta - (packet_samples(rebuilt) if rebuilt else 0)
            if silent:
                self._note_gap(self._writer.samples / SAMPLE_RATE, silent / SAMPLE_RATE)
                self._writer.write_gap(silent)
                self.lost_samples += silent
                LOST_AUDIO_SECONDS.labels("silent").inc(silent / SAMPLE_RATE)
                if self._pcm_sink is not None:
                    self._push_pcm(b"\x00\x00" * (silent // 3), now)
            if rebuilt:
                self._writer.write(rebuilt)
                self.rebuilt_samples += packet_samples(rebuilt)
                LOST_AUDIO_SECONDS.labels("rebuilt").inc(packet_samples(rebuilt) / SAMPLE_RATE)
                if self._pcm_sink is not None:
                    self._push_pcm(self._decode(rebuilt), now)
        self._writer.write(payload)
        self._previous = payload
        self.packets += 1
        self._next_ts = (timestamp + packet_samples(payload)) & 0xFFFFFFFF
        if self._pcm_sink is not None:
            self._push_pcm(self._decode(payload), now)
        if now - self._last_report >= 5:
            self._last_report = now
            self.segment.duration_s = self._writer.samples / SAMPLE_RATE
            self._on_segment(self.segment)

    def _rebuild(self, payload: bytes, missing: int) -> bytes | None:
        """The lost frame just before `payload`, from its FEC copy, if it fits the gap."""
        if len(payload) < 2 or missing < frame_samples(payload[0]):
            return None
        if self._fec is None:
            self._fec = FecRepair()
        rebuilt = self._fec.rebuild(self._previous, payload)
        if rebuilt is None or packet_samples(rebuilt) != frame_samples(payload[0]):
            return None
        return rebuilt

    def _note_gap(self, at: float, length: float) -> None:
        assert self.segment is not None
        self.segment.lost_s += length
        self._losses.append((at, length))
        # Losses close together are one gap; a run of them long enough is marked.
        merged: list[tuple[float, float]] = []
        for start, size in self._losses:
            if merged and start - (merged[-1][0] + merged[-1][1]) < MERGE_GAPS_S:
                merged[-1] = (merged[-1][0], start + size - merged[-1][0])
            else:
                merged.append((start, size))
        # Only the last run can still grow: older ones are settled.
        self._losses = merged[-1:]
        settled = [g for g in merged[:-1] if g[1] >= MARKED_GAP_S]
        last = [g for g in merged[-1:] if g[1] >= MARKED_GAP_S]
        marked = self._marked + settled
        self._marked = marked[:MAX_MARKED_GAPS]
        self.segment.gaps = [(round(a, 2), round(b, 2)) for a, b in (self._marked + last)]

    def _decode(self, payload: bytes) -> bytes:
        if self._decoder is None:
            self._decoder = PcmDecoder()
        return self._decoder.decode(payload)

    def _push_pcm(self, samples: bytes, now: float) -> None:
        assert self._pcm_sink is not None
        if samples:
            self._pcm_sink.push(PcmChunk(self.interview_id, self.role, samples, now))

    def _open(self, timestamp: int, now: float) -> None:
        index = self._next_index
        self._next_index += 1
        path = self._segment_path(index)
        self._writer = OggOpusWriter(
            path, serial=secrets.randbits(32), title=f"interview {self.interview_id} {self.role}"
        )
        self.segment = Segment(
            self.interview_id, self.role, index, path, datetime.fromtimestamp(now, UTC)
        )
        self._next_ts = timestamp
        self._last_report = now
        self._losses, self._marked = [], []
        self._on_segment(self.segment)

    def end_segment(self) -> None:
        """The connection ended: close the file; the next packet opens a new segment."""
        if self._writer is None or self.segment is None:
            return
        self._writer.close()
        self.segment.duration_s = self._writer.samples / SAMPLE_RATE
        self.segment.closed = True
        self._on_segment(self.segment)
        self._writer = None
        self.segment = None
        self._decoder = None
        self._previous = None
        if self._fec is not None:
            self._fec.close()
            self._fec = None
