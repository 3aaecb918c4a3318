"""The live pipeline of one node: candidate PCM -> live transcript -> stored answer -> AI score,
each step pushed to the recruiter's page as it happens."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from assistant.scorer import QuestionSpec, Scorer, Verdict
from media.pcm import PcmChunk
from rooms import conduct
from rooms.db import SessionMaker
from signaling.hub import Hub
from transcription.engine import Engine
from transcription.live import AnswerSoFar, LiveTranscriber

log = logging.getLogger(__name__)


@dataclass
class Timings:
    """Delays from the recruiter moving on to the final transcript and to the score (seconds)."""

    to_transcript: list[float] = field(default_factory=list)
    to_score: list[float] = field(default_factory=list)


class LiveAnswers:
    """A PCM sink (media.pcm.PcmSink) and the keeper of each interview's live transcriber."""

    def __init__(
        self,
        sessions: SessionMaker,
        hub: Hub,
        engine_factory: Callable[[], Engine],
        scorer: Scorer,
    ) -> None:
        self.sessions = sessions
        self.hub = hub
        self.engine_factory = engine_factory
        self.scorer = scorer
        self._engine: Engine | None = None
        self._speech = ThreadPoolExecutor(1, thread_name_prefix="whisper")
        self._scoring = ThreadPoolExecutor(1, thread_name_prefix="scorer")
        self._live: dict[int, LiveTranscriber] = {}
        self.timings = Timings()

    def _load(self) -> Engine:
        """Runs in the speech thread: the engine is loaded once, on first use."""
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine

    async def _blocking(self, work: Callable[[], str]) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._speech, work)

    def _transcriber(self, interview_id: int) -> LiveTranscriber:
        live = self._live.get(interview_id)
        if live is None:
            live = LiveTranscriber(
                _LazyEngine(self),
                self._blocking,
                on_update=lambda position, text, final: self._update(
                    interview_id, position, text, final
                ),
                on_final=lambda answer, at: self._final(interview_id, answer, at),
            )
            live.start()
            self._live[interview_id] = live
        return live

    def push(self, chunk: PcmChunk) -> None:
        if chunk.role == "candidate":
            self._transcriber(chunk.interview_id).push(chunk)

    def boundary(self, interview_id: int, at: datetime, position: int | None) -> None:
        """The recruiter moved on at `at`: audio after it belongs to `position` (or to nothing)."""
        self._transcriber(interview_id).boundary(at.timestamp(), position)
        if position == 1:
            self._warm_up()

    def _warm_up(self) -> None:
        """Load the speech model and the scorer's model while the first question is read out,
        so that the first answer's transcript and score are not late."""
        loop = asyncio.get_running_loop()
        loop.run_in_executor(self._speech, self._load)
        warm = getattr(self.scorer, "warm_up", None)
        if warm is not None:
            loop.run_in_executor(self._scoring, warm)

    async def close_interview(self, interview_id: int) -> None:
        live = self._live.pop(interview_id, None)
        if live is not None:
            # Let the last answer be finished before the transcriber goes.
            for _ in range(50):
                if live.answer is None and live.queue.empty():
                    break
                await asyncio.sleep(0.1)
            await live.stop()

    async def stop(self) -> None:
        for interview_id in list(self._live):
            live = self._live.pop(interview_id)
            await live.stop()
        self._speech.shutdown(wait=False, cancel_futures=True)
        self._scoring.shutdown(wait=False, cancel_futures=True)

    async def _update(self, interview_id: int, position: int, text: str, final: bool) -> None:
        await self.hub.publish_event(
            interview_id,
            "transcript",
            {"position": position, "text": text, "final": False},
            roles=["recruiter"],
        )

    async def _final(self, interview_id: int, answer: AnswerSoFar, at: float) -> None:
        segments = [{"start": p.start, "end": p.end, "text": p.text} for p in answer.pieces]
        # Read, not loaded here: loading runs in the speech thread, behind any transcription.
        engine_name = self._engine.name if self._engine is not None else ""
        async with self.sessions.begin() as session:
            await conduct.save_answer(
                session,
                interview_id,
                answer.position,
                answer.text,
                segments,
                datetime.fromtimestamp(answer.started_at, UTC),
                datetime.fromtimestamp(at, UTC),
                engine_name,
            )
            question = await conduct.question_spec(session, interview_id, answer.position)
        self.timings.to_transcript.append(time.time() - at)
        await self.hub.publish_event(
            interview_id,
            "transcript",
            {"position": answer.position, "text": answer.text, "final": True},
            roles=["recruiter"],
        )
        if question is None:
            return
        spec = QuestionSpec(question.text, question.expected_answer, tuple(question.key_points))
        loop = asyncio.get_running_loop()
        verdict: Verdict = await loop.run_in_executor(
            self._scoring, self.scorer.score, spec, answer.text
        )
        async with self.sessions.begin() as session:
            await conduct.save_score(
                session,
                interview_id,
                answer.position,
                verdict.score,
                verdict.rationale,
                verdict.covered,
                verdict.missing,
                verdict.follow_up,
                verdict.scorer,
                verdict.note,
            )
        self.timings.to_score.append(time.time() - at)
        await self.hub.publish_event(
            interview_id,
            "score",
            {
                "position": answer.position,
                "score": verdict.score,
                "rationale": verdict.rationale,
                "covered": verdict.covered,
                "missing": verdict.missing,
                "follow_up": verdict.follow_up,
                "note": verdict.note,
            },
            roles=["recruiter"],
        )


class _LazyEngine:
    """Loads the real engine on first use, inside the speech thread."""

    def __init__(self, owner: LiveAnswers) -> None:
        self.owner = owner
        self.name = "pending"

    def transcribe(self, pcm: bytes, partial: bool = False) -> str:
        engine = self.owner._load()
        self.name = engine.name
        return engine.transcribe(pcm, partial)
