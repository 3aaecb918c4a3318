"""The live pipeline of one node: candidate PCM -> live transcript -> answer job (stored
transcript and AI score), each step pushed to the recruiter's page as it happens.

The node finds the speech segments (cheap); the speech jobs run in this process or, with Redis,
on whichever worker takes them (pipeline.work)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from bus.events import TranscriptUpdated, publish_event
from bus.pubsub import Bus
from jobs.queue import JobKind, JobQueue
from media.pcm import PcmChunk
from pipeline.work import Work, answer_body, spec_of
from rooms import conduct
from rooms.db import SessionMaker
from rooms.models import Interview
from telemetry.logs import working_on
from transcription.live import AnswerSoFar, LiveTranscriber, Piece

log = logging.getLogger(__name__)

PARTIAL_REPLY_S = 3.0  # a partial later than this is stale
AUDIO_GONE_S = 60.0  # no audio from the candidate for this long: hand the answer on
SEGMENT_REPLY_S = 10.0  # past this, the answer job transcribes the segment itself (as long as
# the transcriber waits for segments when the recruiter moves on)


class NodeAnswers:
    """The answers of the candidates whose audio comes to this node: a PCM sink
    (media.pcm.PcmSink) and the keeper of each interview's live transcriber."""

    def __init__(self, sessions: SessionMaker, bus: Bus, jobs: JobQueue, work: Work | None) -> None:
        self.sessions = sessions
        self.bus = bus
        self.jobs = jobs
        self.work = work  # set when this process runs speech jobs itself
        self._live: dict[int, LiveTranscriber] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._shown: dict[int, tuple[int, str]] = {}  # the live text last pushed, per interview
        self._position: dict[int, int | None] = {}  # the question being answered, once known
        self._moved: set[int] = set()  # interviews whose transcriber has had a move
        self._heard: dict[int, float] = {}  # monotonic time of the candidate's latest audio
        self._language: dict[int, str] = {}  # each interview's language, once read
        self._sweeper: asyncio.Task[None] | None = None
        self.audio_gone_s = AUDIO_GONE_S

    def _transcriber(self, interview_id: int) -> LiveTranscriber:
        live = self._live.get(interview_id)
        if live is None:

            async def final(answer: AnswerSoFar, at: float) -> None:
                await self._final(interview_id, created, answer, at)

            created = live = LiveTranscriber(
                lambda pcm, partial: self._transcribe(interview_id, pcm, partial),
                on_update=lambda position, text, final: self._update(
                    interview_id, position, text, final
                ),
                on_final=final,
                on_piece=lambda answer, piece: self._keep(interview_id, answer, piece),
            )
            live.start()
            self._live[interview_id] = live
            self._moved.discard(interview_id)
            self._spawn(self._resume(interview_id, live), "resume-answer")
        return live

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resume(self, interview_id: int, live: LiveTranscriber) -> None:
        """The candidate's audio starts here mid-question (this node restarted, or the
        candidate reconnected to it): their words belong to the question on screen."""
        try:
            async with self.sessions() as session:
                found = await conduct.answering_since(session, interview_id)
        except Exception:
            log.exception(
                "could not find the question being answered in interview %s", interview_id
            )
            return
        if self._live.get(interview_id) is not live or interview_id in self._moved:
            return  # a move reached it meanwhile, or it is gone
        if found is not None:
            at, position = found
            self._position[interview_id] = position
            live.boundary(at.timestamp(), position)
            self._prepare_question(interview_id, position)

    def push(self, chunk: PcmChunk) -> None:
        if chunk.role == "candidate":
            self._transcriber(chunk.interview_id).push(chunk)
            self._heard[chunk.interview_id] = time.monotonic()
            if self._sweeper is None:
                self._sweeper = asyncio.create_task(
                    self._sweep(), name="audio-gone-sweep", context=contextvars.Context()
                )

    async def _sweep(self) -> None:
        """The candidate's audio stopped coming here (they left, or reconnected to another
        node): the answer so far is handed on and the transcriber goes. If the audio comes
        back, a new transcriber picks up the question on screen, and the parts are merged."""
        while True:
            await asyncio.sleep(min(5.0, self.audio_gone_s / 4))
            now = time.monotonic()
            for interview_id, heard in list(self._heard.items()):
                if now - heard < self.audio_gone_s:
                    continue
                del self._heard[interview_id]
                live = self._live.get(interview_id)
                working_on(interview_id)
                if live is not None:
                    log.info(
                        "no audio from the candidate of interview %s: answer handed on",
                        interview_id,
                    )
                    live.boundary(live.heard_until, None)
                    self.close_soon(interview_id)

    def boundary(self, interview_id: int, at: datetime, position: int | None) -> None:
        """The recruiter moved on at `at`: audio after it belongs to `position` (or to nothing)."""
        live = self._live.get(interview_id)
        if live is not None:
            live.boundary(at.timestamp(), position)
            self._moved.add(interview_id)
        # (No audio here yet: a transcriber started later reads the question from the database.)
        self._position[interview_id] = position
        self._shown.pop(interview_id, None)
        if position == 1 and self.work is not None:
            # Load the models while the first question is read out (workers load at start).
            self._spawn(self._warm_up(self.work, interview_id), "warm-up")
        if live is not None:  # the answer is scored here (else `_resume` prepares it)
            self._prepare_question(interview_id, position)

    async def _warm_up(self, work: Work, interview_id: int) -> None:
        await work.warm_up(await self.language_of(interview_id))

    def _prepare_question(self, interview_id: int, position: int | None) -> None:
        """The question now on screen: its key points are embedded while it is answered, not
        after the recruiter moves on (about 0.6 s of a Russian score)."""
        if position is not None and self.work is not None:
            self._spawn(self._read_question(self.work, interview_id, position), "prepare-question")

    async def _read_question(self, work: Work, interview_id: int, position: int) -> None:
        try:
            async with self.sessions() as session:
                question = await conduct.question_spec(session, interview_id, position)
        except Exception as exc:  # the score embeds it then
            log.warning("could not read question %s to prepare: %s", position, type(exc).__name__)
            return
        if question is not None:
            work.prepare_question(spec_of(question, await self.language_of(interview_id)))

    async def language_of(self, interview_id: int) -> str:
        """The interview's language, given to Whisper and the scorer (read once, then kept)."""
        language = self._language.get(interview_id)
        if language is None:
            try:
                async with self.sessions() as session:
                    interview = await session.get(Interview, interview_id)
            except Exception:
                log.warning("could not read the language of interview %s", interview_id)
                return "en"  # not kept: read again on the next pass
            language = interview.language if interview is not None else "en"
            self._language[interview_id] = language
        return language

    def receives(self, interview_id: int) -> bool:
        """Whether the candidate's audio of this interview comes to this node."""
        return interview_id in self._live

    def close_soon(self, interview_id: int) -> None:
        """The interview ended: the last answer is handed on, then the transcriber goes."""
        self._spawn(self.close_interview(interview_id), "close-interview")

    async def joined(self, interview_id: int, role: str) -> None:
        """A recruiter's page (re)joined the room: it gets the live text of the answer in
        progress now rather than at the candidate's next words. Runs on every node of the
        room; only the one receiving the candidate's audio has the text."""
        shown = self._shown.get(interview_id)
        if role == "recruiter" and shown is not None:
            position, text = shown
            await self._publish(interview_id, position, text)

    async def tests_ran(self, interview_id: int, position: int) -> None:
        """A coding question's hidden tests ran (stored with the code): its answer, if stored,
        is scored again, so that a judge reading the code sees their result."""
        body = {
            "interview": interview_id,
            "position": position,
            "language": await self.language_of(interview_id),
        }
        try:
            await self.jobs.submit(JobKind.RESCORE, body)
        except Exception:  # the result is stored; the recruiter can run the tests again
            log.warning(
                "could not queue scoring interview %s question %s again", interview_id, position
            )

    async def close_interview(self, interview_id: int) -> None:
        self._heard.pop(interview_id, None)
        self._language.pop(interview_id, None)
        self._shown.pop(interview_id, None)
        self._position.pop(interview_id, None)
        self._moved.discard(interview_id)
        live = self._live.pop(interview_id, None)
        if live is not None:
            # Let the last answer be handed on before the transcriber goes.
            for _ in range(150):
                if live.idle:
                    break
                await asyncio.sleep(0.1)
            await live.stop()

    async def stop(self, drain_s: float = 10.0) -> None:
        """Shutting down: what each candidate said so far is handed on as their answer (with
        the audio of segments not transcribed yet), rather than lost."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        now = time.time()
        for live in self._live.values():
            live.boundary(now, None)
            live.hurry()
        for _ in range(int(drain_s / 0.05)):
            if all(live.idle for live in self._live.values()):
                break
            await asyncio.sleep(0.05)
        for interview_id in list(self._live):
            await self._live.pop(interview_id).stop()

    async def _transcribe(self, interview_id: int, pcm: bytes, partial: bool) -> str | None:
        # Past the deadline the answer job transcribes the segment itself: a worker that is
        # that far behind skips it rather than doing the work twice.
        wait = PARTIAL_REPLY_S if partial else SEGMENT_REPLY_S
        body = {
            "partial": partial,
            "deadline": time.time() + wait,
            "language": await self.language_of(interview_id),
        }
        growing = f"interview-{interview_id}"  # each pass sends the segment so far again
        reply = await self.jobs.submit(
            JobKind.TRANSCRIBE, body, pcm, reply_within=wait, growing=growing
        )
        return None if reply is None else str(reply.get("text", ""))

    async def _update(self, interview_id: int, position: int, text: str, final: bool) -> None:
        if final and self.work is not None:
            # A segment is settled: its sentences can be embedded now.
            self.work.prepare(text, self._language.get(interview_id, "en"))
        if self._position.get(interview_id) == position:  # not a late one of the last answer
            self._shown[interview_id] = (position, text)
        await self._publish(interview_id, position, text)

    async def _keep(self, interview_id: int, answer: AnswerSoFar, piece: Piece) -> None:
        """A segment of the answer in progress has its text: stored at once (still pending),
        so that what the candidate said survives this node dying before the recruiter moves
        on; the answer's job, from whichever node heard the rest, adds to it."""
        segment = {"start": piece.start, "end": piece.end, "text": piece.text}
        try:
            async with self.sessions.begin() as session:
                await conduct.save_answer(
                    session,
                    interview_id,
                    answer.position,
                    "",
                    [segment],
                    datetime.fromtimestamp(answer.started_at, UTC),
                    None,
                    "",
                )
        except Exception as exc:  # it still travels with the answer's job
            log.warning(
                "could not keep a segment of answer %s: %s", answer.position, type(exc).__name__
            )

    async def _publish(self, interview_id: int, position: int, text: str) -> None:
        await publish_event(
            self.bus, interview_id, TranscriptUpdated(position, text, False), roles=["recruiter"]
        )

    async def _final(
        self, interview_id: int, live: LiveTranscriber, answer: AnswerSoFar, at: float
    ) -> None:
        if not answer.pieces and live.heard_until <= answer.started_at:
            # No audio at all came here during this answer (the candidate's audio goes to
            # another node now, or stopped): this node has nothing to say about it.
            return
        body, pcm = answer_body(interview_id, answer, at, await self.language_of(interview_id))
        try:  # the results page says "being transcribed" until the job has stored it
            async with self.sessions.begin() as session:
                await conduct.mark_answer_pending(
                    session,
                    interview_id,
                    answer.position,
                    datetime.fromtimestamp(answer.started_at, UTC),
                    datetime.fromtimestamp(at, UTC),
                )
        except Exception:
            log.exception("could not mark answer %s as pending", answer.position)
        # Queued apart from the transcriber, which may be stopped meanwhile.
        self._spawn(self._queue_answer(body, pcm), "queue-answer")

    async def _queue_answer(self, body: dict[str, Any], pcm: bytes) -> None:
        for attempt in range(1, 6):  # the queue may be restarting: keep the answer meanwhile
            try:
                await self.jobs.submit(JobKind.ANSWER, body, pcm)
                return
            except Exception:
                log.warning("could not queue answer %s (try %d of 5)", body["position"], attempt)
            if attempt < 5:
                await asyncio.sleep(2.0 * attempt)
        log.error(
            "gave up queueing the answer to interview %s question %s; it stays pending",
            body["interview"],
            body["position"],
        )
