"""The one operation behind every move of an interview: a stage change, a question shown, the
end. Whichever web node the recruiter's request reaches, the answer in progress is cut at that
moment on the node that receives the candidate's audio, the recordings close at the end, and
the pages hear of it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

from bus.events import InterviewMoved, PageEvent, StateChanged, encode, publish_event, room_channel
from bus.pubsub import Bus
from pipeline.answers import NodeAnswers
from rooms.states import InterviewState

log = logging.getLogger(__name__)


class Recordings(Protocol):
    """The media server, as a move needs it (media.peer.MediaServer)."""

    async def close_interview(self, interview_id: int) -> None: ...


class InterviewMoves:
    """Tells this node's answers, the other nodes of the room, media and the pages."""

    def __init__(self, answers: NodeAnswers, bus: Bus, node: str, media: Recordings) -> None:
        self.answers = answers
        self.bus = bus
        self.node = node
        """This node's name on the bus: its own moves come back to it and are skipped."""
        self.media = media

    async def started(self, interview_id: int) -> None:
        """Start interview: both pages open the call and the Interview plan."""
        await publish_event(self.bus, interview_id, StateChanged(InterviewState.PLAN.value))

    async def moved(
        self, interview_id: int, at: datetime, position: int | None, announce: PageEvent | None
    ) -> None:
        """The recruiter moved on at `at`: audio after it belongs to question `position` (or
        to none); `announce` is what the pages are told."""
        self.answers.boundary(interview_id, at, position)
        await self._tell_nodes(InterviewMoved(self.node, interview_id, at.timestamp(), position))
        if announce is not None:
            await publish_event(self.bus, interview_id, announce)

    async def shown(self, interview_id: int, announce: PageEvent) -> None:
        """The pages show something else without a move (the scratch pad opened or closed):
        the answer in progress goes on."""
        await publish_event(self.bus, interview_id, announce)

    async def ended(self, interview_id: int, at: datetime) -> None:
        """The red phone icon: the last answer is handed on (transcribed and scored after the
        response), the recordings close, both pages show the end."""
        self.answers.boundary(interview_id, at, None)
        await self._tell_nodes(InterviewMoved(self.node, interview_id, at.timestamp(), None, True))
        await self.media.close_interview(interview_id)
        self.answers.close_soon(interview_id)
        await publish_event(self.bus, interview_id, StateChanged(InterviewState.COMPLETED.value))

    async def arrived(self, move: InterviewMoved) -> None:
        """A move made through another node: it matters here only if the candidate's audio
        comes to this node (else a transcriber started later reads the question from the
        database)."""
        if move.node == self.node or not self.answers.receives(move.interview):
            return
        self.answers.boundary(move.interview, datetime.fromtimestamp(move.at, UTC), move.position)
        if move.ended:  # not awaited: the bus waits for its handlers
            self.answers.close_soon(move.interview)

    async def _tell_nodes(self, move: InterviewMoved) -> None:
        try:
            await self.bus.publish(room_channel(move.interview), encode(move))
        except Exception:  # the move is stored; a node starting later reads it from there
            log.exception("could not tell the other nodes about a move")
