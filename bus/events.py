"""Every message that travels on the bus, and every interview event pushed to pages, as types.

Room channels (`room_channel`) carry four kinds of envelope between the nodes of an interview's
call: who is here changed, a signaling message to relay, the recruiter moved on, an event for
the pages. A node's reply channel carries job replies. The wire form of each is a JSON object
(`encode` / `decode_room`); nothing else spells an event or envelope name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from bus.pubsub import Bus


class EventName(StrEnum):
    """The `name` of an `event` message a page receives."""

    STATE = "state"
    """The interview's state changed (started, completed)."""
    STAGE = "stage"
    """The recruiter moved (technical part, another question, finish): what the candidate sees."""
    TRANSCRIPT = "transcript"
    """The candidate's words so far for a question (final once the answer is stored)."""
    SCORE = "score"
    """The AI assistant's verdict on a stored answer."""
    RECORDING = "recording"
    """A participant's recording connection came up or went down."""


@dataclass(frozen=True)
class StateChanged:
    """The interview's new state (`rooms.states.InterviewState` value)."""

    state: str


@dataclass(frozen=True)
class StageShown:
    """What the candidate's page shows after the recruiter moved: the stage, the question and
    the scratch pad (its language while open)."""

    state: str
    question: dict[str, Any] | None
    scratch: str | None = None


@dataclass(frozen=True)
class TranscriptUpdated:
    """The candidate's words for question `position` so far; `final` once stored."""

    position: int
    text: str
    final: bool


@dataclass(frozen=True)
class ScoreReady:
    """The AI assistant's verdict on the stored answer to question `position`."""

    position: int
    score: float
    """0-10."""
    rationale: str
    covered: list[str]
    """The key points the answer covers; `missing`, those it does not."""
    missing: list[str]
    follow_up: str
    """A question the recruiter could ask next."""
    note: str
    """Why this scorer scored it (e.g. the LLM judge fell back to the local scorer)."""
    confidence: float = 1.0
    """0-1; low: the page says "Check this answer" with `doubt`, the sentence that caused it."""
    doubt: str = ""
    check: bool = False
    """The confidence is low: the recruiter should check this answer."""
    misconceptions: list[str] = field(default_factory=list)
    """The rubric's misconceptions the answer asserts."""


@dataclass(frozen=True)
class RecordingChanged:
    """The recording connection of `role` came up (`active`) or went down."""

    role: str
    active: bool


PageEvent = StateChanged | StageShown | TranscriptUpdated | ScoreReady | RecordingChanged

_EVENT_NAMES: dict[type[Any], EventName] = {
    StateChanged: EventName.STATE,
    StageShown: EventName.STAGE,
    TranscriptUpdated: EventName.TRANSCRIPT,
    ScoreReady: EventName.SCORE,
    RecordingChanged: EventName.RECORDING,
}


def page_message(event: PageEvent) -> dict[str, Any]:
    """The `event` message a page receives for `event`."""
    return {"type": "event", "name": _EVENT_NAMES[type(event)].value, "data": asdict(event)}


class Envelope(StrEnum):
    """The `kind` of a message on a room channel."""

    PRESENCE = "presence"
    RELAY = "relay"
    MOVE = "move"
    EVENT = "event"


@dataclass(frozen=True)
class PresenceChanged:
    """A page joined, became ready or left, and the room's presence entries right after it
    (`signaling.presence`: with their expiry); without them (an older node) each node reads
    the room's presence itself."""

    sender: str
    joined: str | None = None
    """The role of a page that just joined (None for other changes)."""
    interview: int | None = None
    peers: dict[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Relayed:
    """A signaling message from one page for the others (or for the page named in `to`)."""

    sender: str
    message: dict[str, Any]


@dataclass(frozen=True)
class InterviewMoved:
    """The recruiter moved on through `node` at `at` (to `position`, or out of the questions);
    `ended`: the interview is over. The node receiving the candidate's audio cuts the answer."""

    node: str
    interview: int
    at: float
    position: int | None
    ended: bool = False


@dataclass(frozen=True)
class ForPages:
    """An interview event for the room's pages, only those of `roles` when given."""

    message: dict[str, Any]
    roles: list[str] | None = None


RoomMessage = PresenceChanged | Relayed | InterviewMoved | ForPages


class MalformedMessage(ValueError):
    """A bus message that is not one of the types above (a newer or broken sender)."""


def room_channel(interview_id: int) -> str:
    """The bus channel of one interview's call."""
    return f"p2pi:room:{interview_id}"


def encode(message: RoomMessage) -> dict[str, Any]:
    """The wire form of a room message."""
    match message:
        case PresenceChanged(sender, joined, interview, peers):
            wire: dict[str, Any] = {"kind": Envelope.PRESENCE.value, "from": sender}
            if joined is not None:
                wire.update(joined=joined, interview=interview)
            if peers is not None:
                wire["peers"] = peers
            return wire
        case Relayed(sender, payload):
            return {"kind": Envelope.RELAY.value, "from": sender, "message": payload}
        case InterviewMoved():
            return {"kind": Envelope.MOVE.value, **asdict(message)}
        case ForPages(payload, roles):
            return {"kind": Envelope.EVENT.value, "roles": roles, "message": payload}
    raise TypeError(f"not a room message: {message!r}")


def decode_room(wire: dict[str, Any]) -> RoomMessage:
    """A room message from its wire form; MalformedMessage when it is none."""
    try:
        kind = Envelope(str(wire.get("kind")))
        if kind is Envelope.PRESENCE:
            joined = wire.get("joined")
            interview = wire.get("interview")
            peers = wire.get("peers")
            if peers is not None and not (
                isinstance(peers, dict) and all(isinstance(v, dict) for v in peers.values())
            ):
                raise TypeError("presence entries are not a map of peers")
            return PresenceChanged(
                str(wire["from"]),
                str(joined) if joined else None,
                int(interview) if interview is not None else None,
                {str(k): v for k, v in peers.items()} if peers is not None else None,
            )
        if kind is Envelope.RELAY:
            return Relayed(str(wire["from"]), dict(wire["message"]))
        if kind is Envelope.MOVE:
            position = wire.get("position")
            return InterviewMoved(
                str(wire["node"]),
                int(wire["interview"]),
                float(wire["at"]),
                int(position) if position is not None else None,
                bool(wire.get("ended")),
            )
        roles = wire.get("roles")
        return ForPages(dict(wire["message"]), [str(r) for r in roles] if roles else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"unreadable room message: {exc}") from None


@dataclass(frozen=True)
class JobReply:
    """What a worker sends back to the node that asked for a job's result."""

    job: str
    reply: dict[str, Any]

    def encode(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def decode(cls, wire: dict[str, Any]) -> JobReply:
        return cls(str(wire.get("job")), dict(wire.get("reply") or {}))


async def publish_event(
    bus: Bus, interview_id: int, event: PageEvent, roles: list[str] | None = None
) -> None:
    """An interview event for the pages in the room, from any process that shares the bus (a
    web node or a worker)."""
    await bus.publish(room_channel(interview_id), encode(ForPages(page_message(event), roles)))
