"""The signaling protocol: every JSON message type a page and the server exchange.

Each WebSocket frame is one JSON object with a `type`. Messages from a page are validated
against the models below; anything else is answered with an `error` and the connection stays up.

| type      | direction        | fields                                        | meaning |
|-----------|------------------|-----------------------------------------------|---------|
| join      | page → server    | role, interview (recruiter) or token (candidate) | enter the interview's room; first message |
| joined    | server → page    | peer, role, interview, state, presence, ice_servers, ice_transport_policy | you are in; your peer id, the ICE servers and policy (all or relay) to use |
| ready     | page → server    | —                                             | candidate clicked Join (consents stored) |
| presence  | server → page    | recruiter{connected}, candidate{connected, ready} | who is here, after every change |
| offer     | both ways        | sdp, connection, to? / from                   | WebRTC offer (the recruiter's page makes them), relayed |
| answer    | both ways        | sdp, connection, re, to? / from                | WebRTC answer to offer `re`, relayed |
| ice       | both ways        | candidate (RTCIceCandidateInit or null), connection, to? / from | ICE candidate, relayed |
| restart   | both ways        | connection?, to? / from                       | ask the other side for a fresh offer |
| media-offer | page → server  | sdp                                           | audio-only offer to the server's recorder (all candidates gathered) |
| media-answer | server → page | sdp                                           | the recorder's answer |
| probe-offer | page → server  | sdp                                           | a data-channel-only offer: can this page reach the server's peer (the check before Join)? |
| probe-answer | server → page | sdp                                           | the server peer's answer to the probe (closed after 20 s) |
| network-check | both ways    | relay, relay_via?, server, rtt_ms?, to? / from | the candidate's connectivity check result, relayed to the recruiter's pages |
| quality   | both ways        | rtt_ms?, loss?, kbps?, server_rtt_ms?, server_loss?, server_connected?, state?, to? / from | a page's connection quality (its call and its path to the server), relayed every few seconds |
| code-sync | both ways        | state (page → server); update, state (server → page) | the page's Yjs state vector; the server answers with what the page lacks and its own state vector |
| code-update | both ways      | update, from (relayed)                        | a Yjs update of the interview's shared code (base64), stored and relayed |
| code-cursor | both ways      | awareness, from (relayed)                     | a y-protocols awareness update (who is where in the code), relayed only |
| code-run  | candidate → recruiter | position (0: the scratch pad), language, status, output, tests[], ms | the candidate ran the code (in their browser): output and each visible test's result, stored and relayed |
| code-tests | recruiter → server → recruiters | position, status, passed, total, failing[], ms | the hidden tests' result (run in the recruiter's browser), stored with the code as part of the verdict |
| event     | server → page    | name, data                                    | interview event (stage changed, question changed, recording on/off) |
| ping      | page → server    | —                                             | keep-alive; answered with pong |
| pong      | server → page    | —                                             | |
| error     | server → page    | code, message                                 | what was wrong with your last message |

A page whose WebSocket is refused or ended by the server sees one of these close codes:

| code | meaning |
|------|---------|
| 1001 | the server is shutting down: reconnect (to another node) |
| 1009 | a frame over 1 MiB |
| 1013 | this node is at its connection cap: try again later |
| 4401 | the recruiter signed out everywhere: do not reconnect |
| 4408 | no `join` within the join deadline (WS_JOIN_DEADLINE_S) |
| 4429 | too many WebSockets from this address (WS_PER_ADDRESS) |
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from signaling import json_input

MAX_MESSAGE_BYTES = 64 * 1024
MAX_FRAME_BYTES = 1024 * 1024
MAX_SDP_CHARS = 48 * 1024
MAX_ID = 2**31 - 1
"""Ids are 32-bit in PostgreSQL: a larger one is refused here, not by the database."""
PEER_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Join(_Message):
    type: Literal["join"]
    role: Literal["recruiter", "candidate"]
    interview: int | None = Field(default=None, ge=1, le=MAX_ID)
    token: str | None = Field(default=None, max_length=128)


class Ready(_Message):
    type: Literal["ready"]


class Offer(_Message):
    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    to: PEER_ID | None = None
    connection: PEER_ID | None = None
    """Which RTCPeerConnection of the sender this belongs to (a new one after a rebuild)."""


class Answer(_Message):
    type: Literal["answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    to: PEER_ID | None = None
    connection: PEER_ID | None = None
    re: PEER_ID | None = None
    """The connection of the offer this answers."""


class IceCandidateInit(_Message):
    candidate: str = Field(max_length=2048)
    sdpMid: str | None = Field(default=None, max_length=64)  # noqa: N815 - the browser's name
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)  # noqa: N815
    usernameFragment: str | None = Field(default=None, max_length=256)  # noqa: N815


class Ice(_Message):
    type: Literal["ice"]
    candidate: IceCandidateInit | None
    to: PEER_ID | None = None
    connection: PEER_ID | None = None


class Restart(_Message):
    type: Literal["restart"]
    to: PEER_ID | None = None
    connection: PEER_ID | None = None


class Ping(_Message):
    type: Literal["ping"]


class ProbeOffer(_Message):
    type: Literal["probe-offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class NetworkCheck(_Message):
    """What the candidate's connectivity check found (web/static/js/network.js)."""

    type: Literal["network-check"]
    relay: Literal["ok", "failed", "none"]
    """A TURN relay candidate was gathered; `none`: no TURN server is configured."""
    relay_via: Literal["udp", "tcp", "tls"] | None = None
    """The best transport a relay was reached over."""
    server: Literal["ok", "failed"]
    """The probe connection to the server's peer came up."""
    rtt_ms: float | None = Field(default=None, ge=0, le=60_000)
    to: PEER_ID | None = None


class Quality(_Message):
    """A page's connection-quality sample (web/static/js/quality.js)."""

    type: Literal["quality"]
    rtt_ms: float | None = Field(default=None, ge=0, le=60_000)
    """Round trip of the call's selected candidate pair."""
    loss: float | None = Field(default=None, ge=0, le=1)
    """Fraction of the call's incoming packets lost over the last interval."""
    kbps: float | None = Field(default=None, ge=0, le=1_000_000)
    """Incoming bitrate of the call."""
    server_rtt_ms: float | None = Field(default=None, ge=0, le=60_000)
    """Round trip of the page's recording connection to the server."""
    server_loss: float | None = Field(default=None, ge=0, le=1)
    """Fraction of the page's audio the server reports lost."""
    server_connected: bool | None = None
    """Whether the page's recording connection is up (None: it has not come up yet)."""
    state: Literal["connecting", "connected", "reconnecting", "left"] | None = None
    to: PEER_ID | None = None


BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"


class CodeSync(_Message):
    """The page's Yjs state vector: the server answers with what the page lacks."""

    type: Literal["code-sync"]
    state: str = Field(max_length=16 * 1024, pattern=BASE64)


class CodeUpdate(_Message):
    """A Yjs update of the shared code (base64 of at most 24 KiB)."""

    type: Literal["code-update"]
    update: str = Field(min_length=4, max_length=32 * 1024 + 4, pattern=BASE64)


class CodeCursor(_Message):
    """An awareness update: the sender's name, colour and selection in the code."""

    type: Literal["code-cursor"]
    awareness: str = Field(min_length=4, max_length=8 * 1024, pattern=BASE64)
    to: PEER_ID | None = None


class CodeTestResult(_Message):
    passed: bool
    got: str | None = Field(default=None, max_length=1000)
    """What the function returned, as JSON text (cut to 1,000 characters)."""
    error: str | None = Field(default=None, max_length=1000)


TESTS_STATUS = Literal["passed", "failed", "error", "timeout", "memory"]
RUN_STATUS = Literal[TESTS_STATUS, "ran"]
"""How a run ended; `ran`: code without tests (the scratch pad) ran to its end."""


class CodeRun(_Message):
    """The candidate ran the code in their browser: its output and the visible tests' results."""

    type: Literal["code-run"]
    position: int = Field(ge=0, le=1000)
    """The coding question; 0: the scratch pad."""
    language: Literal["python", "javascript"]
    status: RUN_STATUS
    output: str = Field(default="", max_length=8000)
    tests: list[CodeTestResult] = Field(default_factory=list, max_length=50)
    ms: float = Field(default=0, ge=0, le=600_000)


class CodeFailing(_Message):
    args: str = Field(max_length=1000)
    expected: str = Field(max_length=1000)
    got: str | None = Field(default=None, max_length=1000)
    error: str | None = Field(default=None, max_length=1000)


class CodeTests(_Message):
    """The hidden tests' result, run in the recruiter's browser (never sent to the candidate)."""

    type: Literal["code-tests"]
    position: int = Field(ge=1, le=1000)
    status: TESTS_STATUS
    passed: int = Field(ge=0, le=50)
    total: int = Field(ge=0, le=50)
    failing: list[CodeFailing] = Field(default_factory=list, max_length=50)
    ms: float = Field(default=0, ge=0, le=600_000)


class MediaOffer(_Message):
    type: Literal["media-offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


Incoming = (
    Join | Ready | Offer | Answer | Ice | Restart | Ping | MediaOffer | ProbeOffer | NetworkCheck
    | Quality | CodeSync | CodeUpdate | CodeCursor | CodeRun | CodeTests
)  # fmt: skip
ClientMessage = Annotated[Incoming, Field(discriminator="type")]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class ProtocolError(Exception):
    """A message that cannot be accepted; `code` is machine-readable, the text is for people."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)

    def as_message(self) -> dict[str, Any]:
        return error(self.code, self.message)


def parse(raw: str | bytes) -> Incoming:
    """Validate one frame from a page, or raise ProtocolError saying what is wrong."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = json_input.loads(raw, MAX_MESSAGE_BYTES)
    except json_input.JsonRefused as exc:
        raise ProtocolError("bad_json", str(exc)) from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "A message must be a JSON object with a type.")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"Unknown message type {str(kind)[:40]!r}.")
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or kind
        raise ProtocolError(
            "bad_message", f"Invalid {kind} message: {where}: {first['msg']}."
        ) from None


_CLIENT_TYPES = frozenset(
    {
        "join",
        "ready",
        "offer",
        "answer",
        "ice",
        "restart",
        "ping",
        "media-offer",
        "probe-offer",
        "network-check",
        "quality",
        "code-sync",
        "code-update",
        "code-cursor",
        "code-run",
        "code-tests",
    }
)


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
