"""The signaling protocol: every JSON message type a page and the server exchange.

Each WebSocket frame is one JSON object with a `type`. Messages from a page are validated
against the models below; anything else is answered with an `error` and the connection stays up.

| type      | direction        | fields                                        | meaning |
|-----------|------------------|-----------------------------------------------|---------|
| join      | page → server    | role, interview (recruiter) or token (candidate) | enter the interview's room; first message |
| joined    | server → page    | peer, role, interview, state, presence, ice_servers | you are in; your peer id and the ICE servers to use |
| ready     | page → server    | —                                             | candidate clicked Join (consents stored) |
| presence  | server → page    | recruiter{connected}, candidate{connected, ready} | who is here, after every change |
| offer     | both ways        | sdp, connection, to? / from                   | WebRTC offer (the recruiter's page makes them), relayed |
| answer    | both ways        | sdp, connection, re, to? / from                | WebRTC answer to offer `re`, relayed |
| ice       | both ways        | candidate (RTCIceCandidateInit or null), connection, to? / from | ICE candidate, relayed |
| restart   | both ways        | connection?, to? / from                       | ask the other side for a fresh offer |
| media-offer | page → server  | sdp                                           | audio-only offer to the server's recorder (all candidates gathered) |
| media-answer | server → page | sdp                                           | the recorder's answer |
| event     | server → page    | name, data                                    | interview event (stage changed, question changed, recording on/off) |
| ping      | page → server    | —                                             | keep-alive; answered with pong |
| pong      | server → page    | —                                             | |
| error     | server → page    | code, message                                 | what was wrong with your last message |
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_MESSAGE_BYTES = 64 * 1024
MAX_FRAME_BYTES = 1024 * 1024
MAX_SDP_CHARS = 48 * 1024
PEER_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Join(_Message):
    type: Literal["join"]
    role: Literal["recruiter", "candidate"]
    interview: int | None = Field(default=None, ge=1, le=2**62)
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


class MediaOffer(_Message):
    type: Literal["media-offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


ClientMessage = Annotated[
    Join | Ready | Offer | Answer | Ice | Restart | Ping | MediaOffer, Field(discriminator="type")
]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class ProtocolError(Exception):
    """A message that cannot be accepted; `code` is machine-readable, the text is for people."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)

    def as_message(self) -> dict[str, Any]:
        return error(self.code, self.message)


def parse(raw: str | bytes) -> Join | Ready | Offer | Answer | Ice | Restart | Ping | MediaOffer:
    """Validate one frame from a page, or raise ProtocolError saying what is wrong."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("bad_json", "The message is not valid JSON.") from None
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
    {"join", "ready", "offer", "answer", "ice", "restart", "ping", "media-offer"}
)


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
