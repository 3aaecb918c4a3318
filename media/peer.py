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

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket

from media.pcm import PcmSink
from media.recorder import ParticipantRecorder, Segment, SegmentListener
from media.remote_candidates import RemoteCandidatePolicy, turn_hosts
from media.storage import RecordingStorage

log = logging.getLogger(__name__)

StateListener = Callable[[int, str, bool], None]
MAX_MEDIA_SECTIONS = 4
"""A page's audio offer has one m= section; many more only cost the server (100 crashed it)."""
PROBE_S = 20.0
"""A connectivity probe (the candidate's check before Join) is closed this long after it began."""
MAX_PROBES = 200
"""Probes open at once on this node; more are refused (each holds sockets and an SCTP stack)."""
IceServers = list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]


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
        ice_servers: IceServers,
        on_segment: SegmentListener,
        pcm_sink: PcmSink | None = None,
        pcm_roles: frozenset[str] = frozenset({"candidate"}),
        on_state: StateListener | None = None,
        ice_transport_policy: str = "all",
    ) -> None:
        self.storage = storage
        self._ice_servers = ice_servers
        """The RTCIceServer dicts, or a function giving them (fresh TURN credentials each time)."""
        self.ice_transport_policy = RTCIceTransportPolicy(ice_transport_policy)
        """`relay`: the server's peer gathers only TURN relay candidates (ICE_TRANSPORT_POLICY)."""
        self.candidates = RemoteCandidatePolicy(turn_hosts(self._servers()))
        """Which of a page's candidates the server checks (see media/remote_candidates.py)."""
        self.on_segment = on_segment
        self.pcm_sink = pcm_sink
        self.pcm_roles = pcm_roles
        self.on_state = on_state
        self._connections: dict[str, _Connection] = {}
        self._recorders: dict[tuple[int, str], ParticipantRecorder] = {}
        self._probes: dict[str, tuple[RTCPeerConnection, asyncio.TimerHandle]] = {}
        self._expiring: set[asyncio.Task[None]] = set()

    def _servers(self) -> list[dict[str, Any]]:
        return self._ice_servers() if callable(self._ice_servers) else self._ice_servers

    @property
    def ice_servers(self) -> list[RTCIceServer]:
        """What the server's peer uses now: always an explicit list (aiortc's default would ask
        a public STUN server)."""
        return [RTCIceServer(**server) for server in self._servers()]

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=self.ice_servers, iceTransportPolicy=self.ice_transport_policy
        )

    def recorder(self, interview_id: int, role: str, first_segment: int = 0) -> ParticipantRecorder:
        key = (interview_id, role)
        if key not in self._recorders:
            self._recorders[key] = ParticipantRecorder(
                interview_id,
                role,
                lambda index: self.storage.segment_path(interview_id, role, index),
                self._segment_changed,
                self.pcm_sink if role in self.pcm_roles else None,
                first_segment=first_segment,
            )
        return self._recorders[key]

    def _segment_changed(self, segment: Segment) -> None:
        self.storage.segment_changed(segment.path, segment.closed)
        self.on_segment(segment)

    async def accept(
        self,
        key: str,
        interview_id: int,
        role: str,
        sdp: str,
        first_segment: int = 0,
        client_address: str = "",
    ) -> str:
        """Answer a page's offer (one connection per page; a new offer replaces the old one).

        `client_address` is where the page's WebSocket came from: only candidates a page
        there may legitimately have are checked (RemoteCandidatePolicy).
        """
        await self.close(key, report=False)
        if "m=audio" not in sdp:
            raise MediaError("The offer has no audio.")
        if sdp.count("\nm=") + sdp.startswith("m=") > MAX_MEDIA_SECTIONS:
            raise MediaError(f"The offer has more than {MAX_MEDIA_SECTIONS} media sections.")
        sdp, dropped = await self.candidates.filter(sdp, client_address)
        if dropped:
            log.info("dropped %d ICE candidates of an offer that its page may not name", dropped)
        pc = RTCPeerConnection(self._configuration())
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
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            if not audio:
                raise MediaError("The offer has no audio.")
            for transceiver in pc.getTransceivers():
                if transceiver.kind != "audio":
                    transceiver.direction = "inactive"  # never receive (and decode) video
            for transceiver in audio:
                # The recorder stores Opus as it arrives: answer with Opus only, so the page
                # cannot send anything else (aiortc 1.x keeps the negotiated list here).
                transceiver._codecs = [
                    c for c in transceiver._codecs if c.mimeType.lower() == "audio/opus"
                ]
                if not transceiver._codecs:
                    raise MediaError("The offer has no Opus audio.")
                for codec in transceiver._codecs:
                    # Ask for in-band FEC: a browser then adds a copy of each frame to the
                    # next packet once it sees loss, and the recorder rebuilds lost frames
                    # from it (media/opus_fec.py).
                    codec.parameters = {**codec.parameters, "useinbandfec": 1}
                transceiver.direction = "recvonly"
                self._tap(transceiver.receiver, recorder)
            await pc.setLocalDescription(await pc.createAnswer())
        except MediaError:
            await self.close(key)
            raise
        except Exception as exc:
            await self.close(key)
            reason = str(exc)[:200] or type(exc).__name__
            raise MediaError(f"The audio offer could not be used: {reason}") from None
        return pc.localDescription.sdp

    @staticmethod
    def _tap(receiver: Any, recorder: ParticipantRecorder) -> None:
        """Send each RTP packet to the recorder instead of aiortc's jitter buffer and decoder.

        This replaces the receiver's per-packet handler (aiortc 1.x), which is where most of
        the receiving CPU went; RTCP and sending are untouched. The stream's statistics are still
        kept, so the receiver reports aiortc sends tell the page its loss and jitter towards
        the server (its connection-quality indicator reads them).
        """
        streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            statistics = streams.get(packet.ssrc)
            if statistics is None:
                statistics = streams[packet.ssrc] = StreamStatistics(48_000)
            statistics.add(packet)
            if packet.payload:
                recorder.on_packet(packet.timestamp, packet.payload, time.time())

        receiver._handle_rtp_packet = handle

    async def probe(self, key: str, sdp: str, client_address: str = "") -> str:
        """Answer a page's connectivity probe: a data-channel-only connection that records
        nothing and is closed after PROBE_S (or the page's next probe, or when it leaves).

        The candidate's page makes one before Join to learn whether it can reach this server's
        peer at all (directly or through TURN), as the recording connection will have to.
        """
        await self._close_probe(key)
        if "m=application" not in sdp or "m=audio" in sdp or "m=video" in sdp:
            raise MediaError("A probe offers one data channel and no media.")
        if sdp.count("\nm=") + sdp.startswith("m=") > 1:
            raise MediaError("A probe offers one data channel and no media.")
        if len(self._probes) >= MAX_PROBES:
            raise MediaError("The server is busy; try the check again in a minute.")
        sdp, _ = await self.candidates.filter(sdp, client_address)
        pc = RTCPeerConnection(self._configuration())
        timer = asyncio.get_running_loop().call_later(PROBE_S, self._expire_probe, key, pc)
        self._probes[key] = (pc, timer)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await self._close_probe(key)
            reason = str(exc)[:200] or type(exc).__name__
            raise MediaError(f"The probe could not be used: {reason}") from None
        return pc.localDescription.sdp

    def _expire_probe(self, key: str, pc: RTCPeerConnection) -> None:
        task = asyncio.create_task(self._close_probe(key, pc))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def _close_probe(self, key: str, only: RTCPeerConnection | None = None) -> None:
        entry = self._probes.get(key)
        if entry is None or (only is not None and entry[0] is not only):
            return
        del self._probes[key]
        entry[1].cancel()
        with contextlib.suppress(Exception):
            await entry[0].close()

    @property
    def probes(self) -> int:
        return len(self._probes)

    async def close(self, key: str, report: bool = True) -> None:
        """The page left or reconnected: end its connection and its recording segment."""
        if report:
            await self._close_probe(key)
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
        for key in list(self._probes):
            await self._close_probe(key)
        for key in list(self._connections):
            await self.close(key)
        for recorder in self._recorders.values():
            recorder.end_segment()
        self._recorders.clear()

    @property
    def connections(self) -> int:
        return len(self._connections)
