"""The server's aiortc peer: one audio-only RTCPeerConnection per connected page, recorded.

Each browser sends its microphone over a second connection to the server. The server never
decodes what it only stores: RTP packets are handed straight from the receiver to the
participant's recorder (Opus copied into Ogg), and only the candidate's audio is decoded to
16 kHz PCM for transcription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket

from media.pcm import PcmSink
from media.recorder import ParticipantRecorder, SegmentListener
from media.storage import RecordingStorage

log = logging.getLogger(__name__)

StateListener = Callable[[int, str, bool], None]


class MediaError(Exception):
    """An offer the server peer cannot accept; the message is for the page."""


@dataclass
class _Connection:
    pc: RTCPeerConnection
    interview_id: int
    role: str
    recorder: ParticipantRecorder
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class MediaServer:
    """Accepts the pages' audio offers and records each participant, across reconnects."""

    def __init__(
        self,
        storage: RecordingStorage,
        ice_servers: list[dict[str, Any]],
        on_segment: SegmentListener,
        pcm_sink: PcmSink | None = None,
        pcm_roles: frozenset[str] = frozenset({"candidate"}),
        on_state: StateListener | None = None,
    ) -> None:
        self.storage = storage
        # Always an explicit list: aiortc's default would ask a public STUN server.
        self.ice_servers = [RTCIceServer(**server) for server in ice_servers]
        self.on_segment = on_segment
        self.pcm_sink = pcm_sink
        self.pcm_roles = pcm_roles
        self.on_state = on_state
        self._connections: dict[str, _Connection] = {}
        self._recorders: dict[tuple[int, str], ParticipantRecorder] = {}

    def recorder(self, interview_id: int, role: str, first_segment: int = 0) -> ParticipantRecorder:
        key = (interview_id, role)
        if key not in self._recorders:
            self._recorders[key] = ParticipantRecorder(
                interview_id,
                role,
                lambda index: self.storage.segment_path(interview_id, role, index),
                self.on_segment,
                self.pcm_sink if role in self.pcm_roles else None,
                first_segment=first_segment,
            )
        return self._recorders[key]

    async def accept(
        self, key: str, interview_id: int, role: str, sdp: str, first_segment: int = 0
    ) -> str:
        """Answer a page's offer (one connection per page; a new offer replaces the old one)."""
        await self.close(key, report=False)
        if "m=audio" not in sdp:
            raise MediaError("The offer has no audio.")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))
        recorder = self.recorder(interview_id, role, first_segment)
        connection = _Connection(pc, interview_id, role, recorder)
        self._connections[key] = connection

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if self._connections.get(key) is not connection:
                return  # replaced by the page's newer connection: its state is what counts
            state = pc.connectionState
            if self.on_state:
                self.on_state(interview_id, role, state == "connected")
            if state in ("failed", "closed"):
                await self.close(key)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            await self.close(key)
            raise MediaError(f"The audio offer could not be used: {exc}") from None
        for transceiver in pc.getTransceivers():
            if transceiver.kind != "audio":
                continue
            transceiver.direction = "recvonly"
            self._tap(transceiver.receiver, recorder)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    @staticmethod
    def _tap(receiver: Any, recorder: ParticipantRecorder) -> None:
        """Send each RTP packet to the recorder instead of aiortc's jitter buffer and decoder.

        This replaces the receiver's per-packet handler (aiortc 1.x), which is where most of
        the receiving CPU went; RTCP and sending are untouched.
        """

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            if packet.payload:
                recorder.on_packet(packet.timestamp, packet.payload, time.time())

        receiver._handle_rtp_packet = handle

    async def close(self, key: str, report: bool = True) -> None:
        """The page left or reconnected: end its connection and its recording segment."""
        connection = self._connections.pop(key, None)
        if connection is None:
            return
        connection.recorder.end_segment()
        with contextlib.suppress(Exception):
            await connection.pc.close()
        if self.on_state and report:
            self.on_state(connection.interview_id, connection.role, False)

    async def close_interview(self, interview_id: int) -> None:
        for key, connection in list(self._connections.items()):
            if connection.interview_id == interview_id:
                await self.close(key)
        for role_key in [k for k in self._recorders if k[0] == interview_id]:
            self._recorders.pop(role_key).end_segment()

    async def close_all(self) -> None:
        for key in list(self._connections):
            await self.close(key)
        for recorder in self._recorders.values():
            recorder.end_segment()
        self._recorders.clear()

    @property
    def connections(self) -> int:
        return len(self._connections)
