"""The WebSocket hub: puts each page in its interview's call, tracks presence, relays messages."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web
from sqlalchemy.orm import selectinload

from bus.events import (
    EventName,
    ForPages,
    InterviewMoved,
    MalformedMessage,
    PresenceChanged,
    Relayed,
    RoomMessage,
    decode_room,
    encode,
    room_channel,
)
from bus.pubsub import Bus
from media.peer import MediaError
from rooms.code_documents import CodeDocuments, CodeRefused, decode_update, save_result
from rooms.db import SessionMaker
from rooms.interviews import candidate_ready_to_join
from rooms.joins import JoinFacts
from rooms.models import Interview
from rooms.recordings import both_consented, segments
from rooms.states import InterviewState, is_live
from signaling import protocol
from signaling.admission import Admissions
from signaling.presence import PRESENCE_TTL_S, PresenceStore, live
from telemetry.logs import working_on

log = logging.getLogger(__name__)

IN_CALL = frozenset({InterviewState.PLAN, InterviewState.TECHNICAL, InterviewState.FINISHING})


class MediaGateway(Protocol):
    """The server's recording peer, as the hub needs it (media.peer.MediaServer)."""

    async def accept(
        self,
        key: str,
        interview_id: int,
        role: str,
        sdp: str,
        first_segment: int = 0,
        client_address: str = "",
    ) -> str: ...

    async def probe(self, key: str, sdp: str, client_address: str = "") -> str: ...

    async def close(self, key: str) -> None: ...


# WebSocket close codes (the table in signaling/protocol.py).
CLOSE_TRY_AGAIN_LATER = 1013
"""The node is at its connection cap."""
CLOSE_SIGNED_OUT = 4401
"""The recruiter signed out everywhere."""
CLOSE_JOIN_DEADLINE = 4408
"""No join within the deadline."""
CLOSE_TOO_MANY_FROM_ADDRESS = 4429
"""This address holds WS_PER_ADDRESS sockets already."""


def _network(address: str) -> str:
    """What the per-address limit counts by: the address, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _where(exc: BaseException) -> str:
    """Where an exception came from, on one line: the innermost three frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))


@dataclass(slots=True)
class _Bucket:
    """A token bucket: `rate` messages a second, bursts up to `capacity`."""

    rate: float
    capacity: float
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)
    warned: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(slots=True)
class Peer:
    """One connected page (slots: a node holds thousands)."""

    id: str
    ws: web.WebSocketResponse
    recruiter_id: int | None
    address: str = ""
    """The client's address (behind trusted proxies, the one they forwarded)."""
    sign_in_token: str | None = None
    """The browser's sign-in token, checked when the page joins (it may have ended since the
    socket opened), batched with other joins."""
    bucket: _Bucket | None = None
    role: str = ""
    call: str = ""
    """The bus channel of the interview's call, once joined."""
    interview_id: int = 0
    ready: bool = False
    since: float = field(default_factory=time.time)
    announced: bool = False
    """The page has its `joined` message: presence broadcasts reach it from then on."""

    def info(self) -> dict[str, Any]:
        return {"role": self.role, "ready": self.ready, "since": self.since}


@dataclass
class _Call:
    """This node's pages of one interview's call."""

    peers: dict[str, Peer] = field(default_factory=dict)
    ended: bool = False
    """The interview ended while its pages were here: their code is final (edits refused)."""


def summarize(peers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The presence message every page of a call receives.

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
    """The calls of this node's pages, kept in step with other nodes through the bus."""

    def __init__(
        self,
        bus: Bus,
        presence: PresenceStore,
        sessions: SessionMaker,
        max_connections: int = 15_000,
        max_per_address: int = 40,
        join_deadline_s: float = 10.0,
        messages_per_s: float = 50.0,
        ice_servers: Callable[[str], list[dict[str, Any]]] = lambda peer: [],
        ice_transport_policy: str = "all",
        media: MediaGateway | None = None,
        on_join: Callable[[int, str], Awaitable[None]] | None = None,
        on_move: Callable[[InterviewMoved], Awaitable[None]] | None = None,
        code: CodeDocuments | None = None,
        on_code_tests: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> None:
        self.code = code
        """The interviews' shared code documents (None: no code editor on this node)."""
        self.ice_servers = ice_servers
        self.ice_transport_policy = ice_transport_policy
        """Sent to pages with their ICE servers: `relay` makes them use TURN only."""
        self.media = media
        self.bus = bus
        self.presence = presence
        self.sessions = sessions
        self.admissions = Admissions(sessions)
        """The join's reads of sign-ins and interviews, batched across concurrent joins."""
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        """Sockets one address (an IPv6 /64) may hold; the next is closed with 4429."""
        self.join_deadline_s = join_deadline_s
        """A socket that has not joined a call this long after opening is closed with 4408."""
        self.messages_per_s = messages_per_s
        self._calls: dict[str, _Call] = {}
        self._peers: dict[str, Peer] = {}
        self._per_address: Counter[str] = Counter()
        self._closing: set[asyncio.Task[Any]] = set()
        self._handlers: dict[str, Any] = {}
        self._refresher: asyncio.Task[None] | None = None
        self.on_join = on_join
        """Called on each node of the call when a page joins it (a reload joins again)."""
        self.on_move = on_move
        """Called on every node of the call when the recruiter moved on or ended the interview
        (the candidate's audio may come in elsewhere)."""
        self.on_code_tests = on_code_tests
        """Called with (interview, position) once a coding question's hidden tests' result is
        stored: its answer is scored again with it."""

    @property
    def connections(self) -> int:
        return len(self._peers)

    @property
    def calls(self) -> int:
        """Calls with at least one page on this node."""
        return len(self._calls)

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_presence(), name="presence-refresh")

    async def close_connections(self) -> None:
        """Close every page's WebSocket (1001: going away); pages reconnect to another node."""
        # All at once: one by one, each waiting for its page's closing frame, thousands of
        # sockets would hold the restart for seconds.
        await asyncio.gather(
            *(p.ws.close(code=1001, message=b"server shutting down") for p in self._peers.values()),
            return_exceptions=True,
        )

    async def stop(self) -> None:
        if self._refresher:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.close_connections()
        await self.admissions.close()
        if self.code is not None:
            await self.code.flush()

    async def serve(
        self,
        request: web.Request,
        recruiter_id: int | None,
        address: str = "",
        sign_in_token: str | None = None,
    ) -> web.WebSocketResponse:
        """Run one page's WebSocket until it closes (or misses the join deadline).

        A recruiter is known by `sign_in_token` (checked when the page joins) or, without one,
        `recruiter_id`.
        """
        # Frames up to 1 MiB are read and refused with an error; larger ones close the socket
        # (1009). No permessage-deflate: its zlib state per socket costs memory and CPU, and
        # signaling messages are small.
        ws = web.WebSocketResponse(
            heartbeat=20, max_msg_size=protocol.MAX_FRAME_BYTES, compress=False
        )
        try:
            await ws.prepare(request)
        except ConnectionError:
            return ws  # the page went away during the handshake
        if len(self._peers) >= self.max_connections:
            await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=b"server busy, try again")
            return ws
        network = _network(address)
        if self._per_address[network] >= self.max_per_address:
            await ws.close(
                code=CLOSE_TOO_MANY_FROM_ADDRESS, message=b"too many connections from your address"
            )
            return ws
        peer = Peer(
            id=secrets.token_urlsafe(9),
            ws=ws,
            recruiter_id=recruiter_id,
            address=address,
            sign_in_token=sign_in_token,
            bucket=_Bucket(self.messages_per_s, self.messages_per_s * 5),
        )
        self._peers[peer.id] = peer
        self._per_address[network] += 1
        deadline = asyncio.get_running_loop().call_later(
            self.join_deadline_s, self._deadline_passed, peer
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if not await self._admit(peer):
                    continue
                if msg.type == WSMsgType.TEXT:
                    await self._receive(peer, msg.data)
                else:
                    await self._send(peer, protocol.error("bad_message", "Send text frames."))
        finally:
            deadline.cancel()
            del self._peers[peer.id]
            self._per_address[network] -= 1
            if self._per_address[network] <= 0:
                del self._per_address[network]
            await self._leave(peer)
        return ws

    async def _admit(self, peer: Peer) -> bool:
        """The page's message rate: over it, messages are dropped with one error a second."""
        assert peer.bucket is not None
        if peer.bucket.take():
            return True
        now = time.monotonic()
        if now - peer.bucket.warned >= 1.0:
            peer.bucket.warned = now
            await self._send(peer, protocol.error("rate_limited", "Too many messages; slow down."))
        return False

    def _deadline_passed(self, peer: Peer) -> None:
        if peer.call or peer.ws.closed:
            return
        message = f"join within {self.join_deadline_s:g} s".encode()
        task = asyncio.create_task(peer.ws.close(code=CLOSE_JOIN_DEADLINE, message=message))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def signed_out(self, recruiter_id: int) -> None:
        """The recruiter signed out everywhere: close their pages' sockets on this node (other
        nodes check the sign-in again when a page joins)."""
        for peer in list(self._peers.values()):
            if peer.recruiter_id == recruiter_id:
                await peer.ws.close(code=CLOSE_SIGNED_OUT, message=b"signed out")

    async def _receive(self, peer: Peer, raw: str) -> None:
        try:
            message = protocol.parse(raw)
            if isinstance(message, protocol.Ping):
                await self._send(peer, {"type": "pong"})
            elif isinstance(message, protocol.Join):
                await self._join(peer, message)
            elif not peer.call:
                raise protocol.ProtocolError("not_joined", "Send a join message first.")
            elif isinstance(message, protocol.Ready):
                await self._ready(peer)
            elif isinstance(message, protocol.MediaOffer):
                await self._media_offer(peer, message.sdp)
            elif isinstance(message, protocol.ProbeOffer):
                await self._probe_offer(peer, message.sdp)
            elif isinstance(
                message,
                protocol.CodeSync | protocol.CodeUpdate | protocol.CodeRun | protocol.CodeTests,
            ):
                await self._code(peer, message)
            else:
                await self._relay(peer, message.model_dump(exclude_none=False))
        except protocol.ProtocolError as exc:
            await self._send(peer, exc.as_message())
        except Exception as exc:
            # One line, never a traceback per message: a page can send thousands a second.
            log.error(
                "signaling message failed: %s: %r at %s",
                type(exc).__name__,
                str(exc)[:200],
                _where(exc),
            )
            await self._send(peer, protocol.error("internal", "The server could not handle that."))

    async def _join(self, peer: Peer, message: protocol.Join) -> None:
        if peer.call:
            raise protocol.ProtocolError("already_joined", "This connection is already in a room.")
        if message.role == "recruiter":
            interview = await self._recruiters_interview(peer, message.interview)
        else:
            interview = await self.admissions.candidate(message.token or "")
        if interview is None:
            raise protocol.ProtocolError("not_found", "No such interview.")
        if not is_live(InterviewState(interview.state)):
            raise protocol.ProtocolError("ended", "This interview has ended.")
        peer.role = message.role
        peer.interview_id = interview.id
        working_on(interview.id)  # every later line of this page's socket names it
        peer.call = room_channel(interview.id)
        call = self._calls.get(peer.call)
        if call is None:
            call = self._calls[peer.call] = _Call()
            handler = self._make_handler(peer.call)
            self._handlers[peer.call] = handler
            await self.bus.subscribe(peer.call, handler)
        call.peers[peer.id] = peer
        announcement = encode(PresenceChanged(peer.id, peer.role, interview.id))
        peers = await self.presence.change(peer.call, peer.id, peer.info(), peer.call, announcement)
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
                "ice_transport_policy": self.ice_transport_policy,
            },
        )
        peer.announced = True

    async def _recruiters_interview(self, peer: Peer, interview_id: int | None) -> JoinFacts | None:
        """The interview a recruiter's page joins, if it is theirs; their sign-in is read at the
        same time, in the same batch of queries."""
        if peer.sign_in_token is not None:
            asked = None if interview_id is None else self.admissions.interview(interview_id)
            try:
                peer.recruiter_id = await self.admissions.recruiter(peer.sign_in_token)
            except BaseException:
                # The same round failed: its error is raised once, here (and not logged again
                # as never retrieved).
                if asked is not None and not asked.cancel() and not asked.cancelled():
                    asked.exception()
                raise
            interview = await asked if asked is not None else None
        else:
            interview = None
            if interview_id is not None and peer.recruiter_id is not None:
                interview = await self.admissions.interview(interview_id)
        if peer.recruiter_id is None:
            raise protocol.ProtocolError("forbidden", "Sign in to join as the recruiter.")
        if interview_id is None:
            raise protocol.ProtocolError("bad_message", "Say which interview to join.")
        if interview is None or interview.recruiter_id != peer.recruiter_id:
            return None  # someone else's interview looks exactly like a missing one
        return interview

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
        await self.presence.change(
            peer.call, peer.id, peer.info(), peer.call, encode(PresenceChanged(peer.id))
        )

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
                peer.id,
                peer.interview_id,
                peer.role,
                sdp,
                first_segment=len(existing),
                client_address=peer.address,
            )
        except MediaError as exc:
            raise protocol.ProtocolError("bad_sdp", str(exc)) from None
        log.info("recording %s of interview %s (peer %s)", peer.role, peer.interview_id, peer.id)
        await self._send(peer, {"type": "media-answer", "sdp": answer})

    async def _probe_offer(self, peer: Peer, sdp: str) -> None:
        """The page's connectivity check: can it reach the server's peer? Nothing is recorded."""
        if self.media is None:
            raise protocol.ProtocolError("unavailable", "The server has no media peer to check.")
        try:
            answer = await self.media.probe(peer.id, sdp, client_address=peer.address)
        except MediaError as exc:
            raise protocol.ProtocolError("bad_sdp", str(exc)) from None
        await self._send(peer, {"type": "probe-answer", "sdp": answer})

    async def _code(
        self,
        peer: Peer,
        message: protocol.CodeSync | protocol.CodeUpdate | protocol.CodeRun | protocol.CodeTests,
    ) -> None:
        """The shared code editor: sync and store edits, store and relay test results."""
        if self.code is None:
            raise protocol.ProtocolError("unavailable", "The code editor is off on this server.")
        call = self._calls.get(peer.call or "")
        if call is not None and call.ended and not isinstance(message, protocol.CodeSync):
            raise protocol.ProtocolError("ended", "The interview has ended: the code is final.")
        try:
            if isinstance(message, protocol.CodeSync):
                reply = await self.code.sync(peer.interview_id, message.state)
                await self._send(peer, {"type": "code-sync", **reply})
                return
            if isinstance(message, protocol.CodeUpdate):
                update = decode_update(message.update)
                await self.code.apply(peer.interview_id, update)
                await self._relay(peer, {"type": "code-update", "update": message.update})
                self.code.store(peer.interview_id, peer.role, update)
                return
        except CodeRefused as exc:
            raise protocol.ProtocolError(exc.code, exc.message) from None
        wanted = "candidate" if isinstance(message, protocol.CodeRun) else "recruiter"
        if peer.role != wanted:
            raise protocol.ProtocolError(
                "not_allowed", f"Only the {wanted}'s page sends {message.type}."
            )
        result = message.model_dump(exclude={"type"})
        if isinstance(message, protocol.CodeTests):
            # The verdict keeps the code the tests ran on, as the server has it now.
            await self.code.open(peer.interview_id)
            result["code"] = self.code.text(peer.interview_id, message.position) or ""
        async with self.sessions.begin() as session:
            part = "visible" if isinstance(message, protocol.CodeRun) else "hidden"
            await save_result(session, peer.interview_id, message.position, **{part: result})
        if isinstance(message, protocol.CodeTests):
            # The hidden tests' inputs are in the failing cases: recruiters' pages only.
            payload = {**message.model_dump(), "from": peer.id}
            await self.bus.publish(peer.call, encode(ForPages(payload, ["recruiter"])))
            if self.on_code_tests is not None:
                await self.on_code_tests(peer.interview_id, message.position)
        else:
            await self._relay(peer, message.model_dump())

    async def _relay(self, peer: Peer, message: dict[str, Any]) -> None:
        message["from"] = peer.id
        await self.bus.publish(peer.call, encode(Relayed(peer.id, message)))

    async def _leave(self, peer: Peer) -> None:
        if not peer.call:
            return
        if self.media is not None:
            try:
                await self.media.close(peer.id)
            except Exception:
                log.exception("could not close the recording connection")
        call = self._calls.get(peer.call)
        if call:
            call.peers.pop(peer.id, None)
        try:
            await self.presence.change(
                peer.call, peer.id, None, peer.call, encode(PresenceChanged(peer.id))
            )
        except Exception:
            log.exception("could not record that a peer left")
        # Two peers of a call leaving at once both find it empty after the awaits above.
        if call is not None and not call.peers and self._calls.get(peer.call) is call:
            del self._calls[peer.call]
            if self.code is not None:
                self.code.close(peer.interview_id)
            handler = self._handlers.pop(peer.call, None)
            if handler is not None:
                await self.bus.unsubscribe(peer.call, handler)

    def _make_handler(self, channel: str) -> Any:
        async def handle(wire: dict[str, Any]) -> None:
            call = self._calls.get(channel)
            if call is None:
                return
            try:
                message = decode_room(wire)
            except MalformedMessage as exc:
                log.warning("dropping a bus message on %s: %s", channel, exc)
                return
            await self._deliver(channel, call, message)

        return handle

    async def _deliver(self, channel: str, call: _Call, message: RoomMessage) -> None:
        """A message of the call's bus channel, for this node's pages of it."""
        match message:
            case PresenceChanged(joined=joined, interview=interview, peers=entries):
                summary = summarize(
                    live(entries) if entries is not None else await self.presence.peers(channel)
                )
                for peer in list(call.peers.values()):
                    if peer.announced:  # (a joining page gets the same in its `joined`)
                        await self._send(peer, summary)
                if joined and interview is not None and self.on_join is not None:
                    try:
                        await self.on_join(interview, joined)
                    except Exception:
                        log.exception("join hook failed")
            case Relayed(sender, payload):
                if (
                    payload.get("type") == "code-update"
                    and self.code is not None
                    and sender not in self._peers
                ):
                    self._code_from_elsewhere(channel, str(payload.get("update", "")))
                target = payload.get("to")
                for peer in list(call.peers.values()):
                    if peer.id == sender or (target and peer.id != target):
                        continue
                    await self._send(peer, payload)
            case InterviewMoved():
                if self.on_move is not None:
                    try:
                        await self.on_move(message)
                    except Exception:
                        log.exception("move hook failed")
            case ForPages(payload, roles):
                data = payload.get("data")
                if (
                    payload.get("name") == EventName.STATE
                    and isinstance(data, dict)
                    and data.get("state") == InterviewState.COMPLETED.value
                ):
                    call.ended = True
                for peer in list(call.peers.values()):
                    if roles and peer.role not in roles:
                        continue
                    await self._send(peer, payload)

    def _code_from_elsewhere(self, channel: str, update: str) -> None:
        """Another node stored a code update: keep this node's document in step."""
        assert self.code is not None
        call = self._calls.get(channel)
        peer = next(iter(call.peers.values()), None) if call else None
        if peer is None:
            return
        try:
            self.code.applied_elsewhere(peer.interview_id, decode_update(update))
        except CodeRefused:
            log.warning("dropping an unreadable code update on %s", channel)

    async def _send(self, peer: Peer, message: dict[str, Any]) -> None:
        if peer.ws.closed:
            return
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await peer.ws.send_json(message)

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_TTL_S / 3)
            entries = [(p.call, p.id, p.info()) for p in list(self._peers.values()) if p.call]
            # One pipeline per 500 pages instead of a round trip each (a node holds thousands).
            for start in range(0, len(entries), 500):
                try:
                    await self.presence.put_many(entries[start : start + 500])
                except Exception:
                    log.exception("presence refresh failed")
