"""The WebSocket hub: puts each page in its interview's room, tracks presence, relays messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web
from sqlalchemy.orm import selectinload

from media.peer import MediaError
from rooms.db import SessionMaker
from rooms.errors import NotFound
from rooms.interviews import candidate_ready_to_join, get_by_candidate_token, get_for_recruiter
from rooms.models import Interview
from rooms.recordings import both_consented, segments
from rooms.states import InterviewState, is_live
from signaling import protocol
from signaling.bus import Bus
from signaling.presence import PRESENCE_TTL_S, PresenceStore

log = logging.getLogger(__name__)

IN_CALL = frozenset({InterviewState.PLAN, InterviewState.TECHNICAL, InterviewState.FINISHING})


class MediaGateway(Protocol):
    """The server's recording peer, as the hub needs it (media.peer.MediaServer)."""

    async def accept(
        self, key: str, interview_id: int, role: str, sdp: str, first_segment: int = 0
    ) -> str: ...

    async def close(self, key: str) -> None: ...


# WebSocket close code 1013: "try again later", sent when the node is at its connection cap.
CLOSE_TRY_AGAIN_LATER = 1013


@dataclass
class Peer:
    """One connected page."""

    id: str
    ws: web.WebSocketResponse
    recruiter_id: int | None
    role: str = ""
    room: str = ""
    interview_id: int = 0
    ready: bool = False
    since: float = field(default_factory=time.time)

    def info(self) -> dict[str, Any]:
        return {"role": self.role, "ready": self.ready, "since": self.since}


@dataclass
class _Room:
    peers: dict[str, Peer] = field(default_factory=dict)


def channel_for(interview_id: int) -> str:
    return f"p2pi:room:{interview_id}"


async def publish_event(
    bus: Bus, interview_id: int, name: str, data: dict[str, Any], roles: list[str] | None = None
) -> None:
    """An interview event for the pages in the room, from any process that shares the bus (a
    web node or a worker)."""
    await bus.publish(
        channel_for(interview_id),
        {"kind": "event", "roles": roles, "message": {"type": "event", "name": name, "data": data}},
    )


def summarize(peers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The presence message every page of a room receives.

    `peer` is the newest connection of that role (a reloaded page replaces its old one), so the
    other side knows whom to negotiate the call with.
    """
    newest: dict[str, tuple[float, str]] = {}
    for peer_id, info in peers.items():
        role = str(info.get("role"))
        since = float(info.get("since", 0))
        if role not in newest or since >= newest[role][0]:
            newest[role] = (since, peer_id)
    candidate = newest.get("candidate")
    recruiter = newest.get("recruiter")
    return {
        "type": "presence",
        "recruiter": {
            "connected": recruiter is not None,
            "peer": recruiter[1] if recruiter else None,
        },
        "candidate": {
            "connected": candidate is not None,
            "ready": any(i.get("role") == "candidate" and i.get("ready") for i in peers.values()),
            "peer": candidate[1] if candidate else None,
        },
    }


class Hub:
    """Rooms of this node's peers, kept in step with other nodes through the bus."""

    def __init__(
        self,
        bus: Bus,
        presence: PresenceStore,
        sessions: SessionMaker,
        max_connections: int = 15_000,
        ice_servers: Callable[[str], list[dict[str, Any]]] = lambda peer: [],
        media: MediaGateway | None = None,
    ) -> None:
        self.ice_servers = ice_servers
        self.media = media
        self.bus = bus
        self.presence = presence
        self.sessions = sessions
        self.max_connections = max_connections
        self._rooms: dict[str, _Room] = {}
        self._peers: dict[str, Peer] = {}
        self._handlers: dict[str, Any] = {}
        self._refresher: asyncio.Task[None] | None = None
        self.on_join: Callable[[int, str], Awaitable[None]] | None = None
        """Called on each node of the room when a page joins it (a reload joins again)."""
        self.on_move: Callable[[int, float, int | None, bool], Awaitable[None]] | None = None
        """Called on the other nodes of the room when the recruiter moved to another question
        through this one, or ended the interview (the candidate's audio may come in
        elsewhere)."""
        self.node = secrets.token_hex(8)

    @property
    def connections(self) -> int:
        return len(self._peers)

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_presence(), name="presence-refresh")

    async def close_connections(self) -> None:
        """Close every page's WebSocket (1001: going away); pages reconnect to another node."""
        for peer in list(self._peers.values()):
            await peer.ws.close(code=1001, message=b"server shutting down")

    async def stop(self) -> None:
        if self._refresher:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.close_connections()

    async def serve(self, request: web.Request, recruiter_id: int | None) -> web.WebSocketResponse:
        """Run one page's WebSocket until it closes."""
        # Frames up to 1 MiB are read and refused with an error; larger ones close the socket (1009).
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=protocol.MAX_FRAME_BYTES)
        try:
            await ws.prepare(request)
        except ConnectionError:
            return ws  # the page went away during the handshake
        if len(self._peers) >= self.max_connections:
            await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=b"server busy, try again")
            return ws
        peer = Peer(id=secrets.token_urlsafe(9), ws=ws, recruiter_id=recruiter_id)
        self._peers[peer.id] = peer
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._receive(peer, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._send(peer, protocol.error("bad_message", "Send text frames."))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            del self._peers[peer.id]
            await self._leave(peer)
        return ws

    async def _receive(self, peer: Peer, raw: str) -> None:
        try:
            message = protocol.parse(raw)
            if isinstance(message, protocol.Ping):
                await self._send(peer, {"type": "pong"})
            elif isinstance(message, protocol.Join):
                await self._join(peer, message)
            elif not peer.room:
                raise protocol.ProtocolError("not_joined", "Send a join message first.")
            elif isinstance(message, protocol.Ready):
                await self._ready(peer)
            elif isinstance(message, protocol.MediaOffer):
                await self._media_offer(peer, message.sdp)
            else:
                await self._relay(peer, message.model_dump(exclude_none=False))
        except protocol.ProtocolError as exc:
            await self._send(peer, exc.as_message())
        except Exception:
            log.exception("signaling message failed")
            await self._send(peer, protocol.error("internal", "The server could not handle that."))

    async def _join(self, peer: Peer, message: protocol.Join) -> None:
        if peer.room:
            raise protocol.ProtocolError("already_joined", "This connection is already in a room.")
        async with self.sessions() as session:
            try:
                if message.role == "recruiter":
                    if peer.recruiter_id is None:
                        raise protocol.ProtocolError(
                            "forbidden", "Sign in to join as the recruiter."
                        )
                    if message.interview is None:
                        raise protocol.ProtocolError("bad_message", "Say which interview to join.")
                    interview = await get_for_recruiter(
                        session, peer.recruiter_id, message.interview
                    )
                else:
                    interview = await get_by_candidate_token(session, message.token or "")
            except NotFound:
                raise protocol.ProtocolError("not_found", "No such interview.") from None
        if not is_live(InterviewState(interview.state)):
            raise protocol.ProtocolError("ended", "This interview has ended.")
        peer.role = message.role
        peer.interview_id = interview.id
        peer.room = channel_for(interview.id)
        room = self._rooms.get(peer.room)
        if room is None:
            room = self._rooms[peer.room] = _Room()
            handler = self._make_handler(peer.room)
            self._handlers[peer.room] = handler
            await self.bus.subscribe(peer.room, handler)
        room.peers[peer.id] = peer
        await self.presence.put(peer.room, peer.id, peer.info())
        peers = await self.presence.peers(peer.room)
        await self._send(
            peer,
            {
                "type": "joined",
                "peer": peer.id,
                "role": peer.role,
                "interview": interview.id,
                "state": interview.state,
                "presence": summarize(peers),
                "ice_servers": self.ice_servers(peer.id),
            },
        )
        await self.bus.publish(
            peer.room,
            {"kind": "presence", "from": peer.id, "joined": peer.role, "interview": interview.id},
        )

    async def _ready(self, peer: Peer) -> None:
        if peer.role != "candidate":
            raise protocol.ProtocolError("not_allowed", "Only the candidate sends ready.")
        async with self.sessions() as session:
            interview = await session.get(
                Interview, peer.interview_id, options=[selectinload(Interview.consents)]
            )
            if interview is None or not is_live(InterviewState(interview.state)):
                raise protocol.ProtocolError("ended", "This interview has ended.")
            if not candidate_ready_to_join(interview):
                raise protocol.ProtocolError(
                    "consent_required", "Give both consents and click Join first."
                )
        peer.ready = True
        await self.presence.put(peer.room, peer.id, peer.info())
        await self.bus.publish(peer.room, {"kind": "presence", "from": peer.id})

    async def _media_offer(self, peer: Peer, sdp: str) -> None:
        """The page's microphone for the server's recorder: only in the call, with both consents."""
        if self.media is None:
            raise protocol.ProtocolError(
                "unavailable", "Recording is not available on this server."
            )
        async with self.sessions() as session:
            interview = await session.get(Interview, peer.interview_id)
            if interview is None or InterviewState(interview.state) not in IN_CALL:
                raise protocol.ProtocolError("not_allowed", "Recording starts with the interview.")
            if not await both_consented(session, peer.interview_id):
                raise protocol.ProtocolError(
                    "consent_required",
                    "Recording needs both the recruiter's and the candidate's consent.",
                )
            existing = await segments(session, peer.interview_id, peer.role)
        try:
            answer = await self.media.accept(
                peer.id, peer.interview_id, peer.role, sdp, first_segment=len(existing)
            )
        except MediaError as exc:
            raise protocol.ProtocolError("bad_sdp", str(exc)) from None
        log.info("recording %s of interview %s (peer %s)", peer.role, peer.interview_id, peer.id)
        await self._send(peer, {"type": "media-answer", "sdp": answer})

    async def _relay(self, peer: Peer, message: dict[str, Any]) -> None:
        message["from"] = peer.id
        await self.bus.publish(peer.room, {"kind": "relay", "from": peer.id, "message": message})

    async def _leave(self, peer: Peer) -> None:
        if not peer.room:
            return
        if self.media is not None:
            try:
                await self.media.close(peer.id)
            except Exception:
                log.exception("could not close the recording connection")
        room = self._rooms.get(peer.room)
        if room:
            room.peers.pop(peer.id, None)
        try:
            await self.presence.remove(peer.room, peer.id)
            await self.bus.publish(peer.room, {"kind": "presence", "from": peer.id})
        except Exception:
            log.exception("could not record that a peer left")
        # Two peers of a room leaving at once both find it empty after the awaits above.
        if room is not None and not room.peers and self._rooms.get(peer.room) is room:
            del self._rooms[peer.room]
            handler = self._handlers.pop(peer.room, None)
            if handler is not None:
                await self.bus.unsubscribe(peer.room, handler)

    def _make_handler(self, room_name: str) -> Any:
        async def handle(envelope: dict[str, Any]) -> None:
            room = self._rooms.get(room_name)
            if room is None:
                return
            kind = envelope.get("kind")
            if kind == "presence":
                summary = summarize(await self.presence.peers(room_name))
                for peer in list(room.peers.values()):
                    await self._send(peer, summary)
                if envelope.get("joined") and self.on_join is not None:
                    try:
                        await self.on_join(int(envelope["interview"]), str(envelope["joined"]))
                    except Exception:
                        log.exception("join hook failed")
            elif kind == "relay":
                message = envelope["message"]
                target = message.get("to")
                for peer in list(room.peers.values()):
                    if peer.id == envelope.get("from"):
                        continue
                    if target and peer.id != target:
                        continue
                    await self._send(peer, message)
            elif kind == "move":
                if envelope.get("node") != self.node and self.on_move is not None:
                    try:
                        at, position = float(envelope["at"]), envelope.get("position")
                        ended = bool(envelope.get("ended"))
                        await self.on_move(int(envelope["interview"]), at, position, ended)
                    except Exception:
                        log.exception("move hook failed")
            elif kind == "event":
                for peer in list(room.peers.values()):
                    roles = envelope.get("roles")
                    if roles and peer.role not in roles:
                        continue
                    await self._send(peer, envelope["message"])

        return handle

    async def publish_move(
        self, interview_id: int, at: float, position: int | None, ended: bool = False
    ) -> None:
        """The recruiter moved on here at `at` (to `position`, or out of the questions; `ended`:
        the interview is over): tell the other nodes of the room."""
        try:
            await self._publish_move(interview_id, at, position, ended)
        except Exception:  # the move is stored; a node starting later reads it from there
            log.exception("could not tell the other nodes about a move")

    async def _publish_move(
        self, interview_id: int, at: float, position: int | None, ended: bool
    ) -> None:
        await self.bus.publish(
            channel_for(interview_id),
            {
                "kind": "move",
                "node": self.node,
                "interview": interview_id,
                "at": at,
                "position": position,
                "ended": ended,
            },
        )

    async def publish_event(
        self, interview_id: int, name: str, data: dict[str, Any], roles: list[str] | None = None
    ) -> None:
        """Tell every page of the interview (on any node) that something happened."""
        await publish_event(self.bus, interview_id, name, data, roles)

    async def _send(self, peer: Peer, message: dict[str, Any]) -> None:
        if peer.ws.closed:
            return
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await peer.ws.send_json(message)

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_TTL_S / 3)
            for peer in list(self._peers.values()):
                if peer.room:
                    try:
                        await self.presence.put(peer.room, peer.id, peer.info())
                    except Exception:
                        log.exception("presence refresh failed")
