"""The speech jobs' work, the same in `serve` (in-process) and in `p2p-interview worker`:
transcribe a live segment, and finish an answer (transcribe what is left, store the transcript,
score it, store the score), each result pushed to the recruiter's page as it is stored.

Answer jobs may run more than once (a worker killed mid-job, its job reclaimed): every write is
an upsert keyed by interview and question, so a second run stores the same answer once. A
question asked again adds to its answer; the score is of the whole answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.scorer import QuestionSpec, Scorer, Verdict, is_non_answer
from bus.events import PageEvent, ScoreReady, TranscriptUpdated
from jobs.queue import Job, JobKind, Reply
from rooms import calibration, code_documents, conduct
from rooms.db import SessionMaker
from rooms.models import Question, ScoreCalibration
from rooms.results import needs_check
from telemetry.logs import working_on
from telemetry.metrics import JOB_SECONDS, SCORE_DELAY_SECONDS, TRANSCRIPTION_SECONDS
from transcription.engine import Engine, without_loops
from transcription.live import AnswerSoFar

log = logging.getLogger(__name__)

Publish = Callable[[int, PageEvent], Awaitable[None]]
"""Sends an interview event to the recruiter's page, from whichever process runs the job."""
T = TypeVar("T")


@dataclass
class Timings:
    """Delays from the recruiter moving on to the final transcript and to the score (seconds)."""

    to_transcript: list[float] = field(default_factory=list)
    to_score: list[float] = field(default_factory=list)


def calibrated(verdict: Verdict, correction: ScoreCalibration | None) -> Verdict:
    """The verdict with its bank's stored correction applied, saying so."""
    if correction is None:
        return verdict
    note = f"Adjusted for this bank from {correction.answers} recruiters' scores (AI: {verdict.score})."
    return replace(
        verdict,
        score=correction.apply(verdict.score),
        note=f"{verdict.note} {note}".strip(),
    )


def _takes_language(method: Callable[..., object]) -> bool:
    return "language" in inspect.signature(method).parameters


def _warm_up(warm: Callable[..., object], language: str) -> None:
    """A scorer's warm-up for `language`, when it takes one (the local scorer does not)."""
    if _takes_language(warm):
        warm(language=language)
    else:
        warm()


def _prepare(prepare: Callable[..., object], answer_so_far: str, language: str) -> None:
    """A scorer's `prepare`, given the language when it takes one."""
    if _takes_language(prepare):
        prepare(answer_so_far, language=language)
    else:
        prepare(answer_so_far)


def answer_body(
    interview_id: int, answer: AnswerSoFar, at: float, language: str = "en"
) -> tuple[dict[str, Any], bytes]:
    """The answer job for `answer`, cut at `at`, in the interview's `language`: the audio of
    pieces still without text travels with the job, to be transcribed by whoever runs it."""
    pcm = bytearray()
    described = []
    for p in answer.pieces:
        piece: dict[str, Any] = {"start": p.start, "end": p.end, "text": p.text}
        if p.text is None:
            piece["offset"], piece["length"] = len(pcm), len(p.pcm)
            pcm += p.pcm
        described.append(piece)
    body = {
        "interview": interview_id,
        "position": answer.position,
        "started_at": answer.started_at,
        "at": at,
        "language": language,
        "pieces": described,
    }

    return body, bytes(pcm)


def spec_of(question: Question, language: str, code: str = "") -> QuestionSpec:
    """What a scorer reads of a bank question, in the interview's language."""
    return QuestionSpec(
        question.text,
        question.expected_answer,
        tuple(question.key_points),
        tuple(question.misconceptions or ()),
        language,
        code,
    )


class Work:
    """Handles `transcribe` and `answer` jobs with one speech engine and one scorer."""

    def __init__(
        self,
        sessions: SessionMaker,
        publish: Publish,
        engine_factory: Callable[[str], Engine],
        scorer: Scorer,
        engine_name: str = "",
    ) -> None:
        self.sessions = sessions
        self.publish = publish
        self.engine_factory = engine_factory
        """Makes the speech engine for a language (an interview's: "en", "ru")."""
        self.scorer = scorer
        self.engine_name = engine_name  # stored with each answer
        self._engines: dict[str, Engine] = {}
        self._speech = ThreadPoolExecutor(1, thread_name_prefix="whisper")
        self._scoring = ThreadPoolExecutor(1, thread_name_prefix="scorer")
        self.timings = Timings()
        self._locks: dict[tuple[int, int], tuple[asyncio.Lock, int]] = {}  # with its users

    async def __call__(self, job: Job) -> Reply | None:
        interview = job.body.get("interview")
        working_on(interview if isinstance(interview, int) else None)
        started = time.monotonic()
        try:
            return await self._run(job)
        finally:
            JOB_SECONDS.labels(job.kind).observe(time.monotonic() - started)

    async def _run(self, job: Job) -> Reply | None:
        # Jobs queued before interviews had a language carry none: English.
        language = str(job.body.get("language") or "en")
        if job.kind == JobKind.TRANSCRIBE:
            partial = bool(job.body.get("partial"))
            return {"text": await self.transcribe(job.pcm, partial, language)}
        if job.kind == JobKind.ANSWER:
            await self.answer(job)
            return None
        if job.kind == JobKind.RESCORE:
            await self.rescore(job)
            return None
        if job.kind == JobKind.WARM_UP:
            await self.warm_up(language)
            return None
        raise ValueError(f"unknown job kind {job.kind!r}")

    def _load(self, language: str = "en") -> Engine:
        """Runs in the speech thread: each language's engine is loaded once, on first use."""
        engine = self._engines.get(language)
        if engine is None:
            engine = self._engines[language] = self.engine_factory(language)
        return engine

    async def warm_up(self, language: str = "en") -> None:
        """Load the speech and scoring models of `language` before the first answer needs them."""
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[object]] = [
            loop.run_in_executor(self._speech, self._load, language)
        ]

        warm = getattr(self.scorer, "warm_up", None)
        if warm is not None:
            waits.append(loop.run_in_executor(self._scoring, _warm_up, warm, language))
        await asyncio.gather(*waits)

    def prepare(self, answer_so_far: str, language: str = "en") -> None:
        """Let the scorer get ready for an answer still being given (fire and forget)."""
        prepare = getattr(self.scorer, "prepare", None)
        if prepare is not None:
            with contextlib.suppress(RuntimeError):  # closed: shutting down
                self._scoring.submit(_prepare, prepare, answer_so_far, language)

    def prepare_question(self, question: QuestionSpec) -> None:
        """Let the scorer embed a question's rubric while it is answered (fire and forget)."""
        prepare = getattr(self.scorer, "prepare_question", None)
        if prepare is not None:
            with contextlib.suppress(RuntimeError):  # closed: shutting down
                self._scoring.submit(prepare, question)

    async def transcribe(self, pcm: bytes, partial: bool = False, language: str = "en") -> str:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        text = await loop.run_in_executor(
            self._speech, lambda: self._load(language).transcribe(pcm, partial)
        )
        TRANSCRIPTION_SECONDS.labels("partial" if partial else "final").observe(
            time.monotonic() - started
        )
        return without_loops(text)  # whichever engine: no "u-mail u-mail u-mail ..." stored

    async def answer_text(
        self, body: dict[str, Any], pcm: bytes
    ) -> tuple[str, list[dict[str, Any]]]:
        """The answer's text and its timed segments; pieces without text are transcribed now."""
        segments = []
        for piece in body["pieces"]:
            text = piece["text"]
            if text is None:
                audio = pcm[piece["offset"] : piece["offset"] + piece["length"]]
                log.info(
                    "transcribing interview %s question %s: %.1f s of audio",
                    body["interview"],
                    body["position"],
                    len(audio) / 32000,
                )
                text = await self.transcribe(audio, language=str(body.get("language") or "en"))
            if text:
                segments.append({"start": piece["start"], "end": piece["end"], "text": text})
        return " ".join(s["text"] for s in segments).strip(), segments

    async def score(self, spec: QuestionSpec, text: str) -> Verdict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._scoring, self.scorer.score, spec, text)

    async def answer(self, job: Job) -> None:
        body = job.body
        interview_id, position, at = int(body["interview"]), int(body["position"]), body["at"]
        text, segments = await self.answer_text(body, job.pcm)
        language = str(body.get("language") or "en")
        engine = self._engines.get(language)
        engine_name = engine.name if engine is not None else self.engine_name
        async with self._one_at_a_time(interview_id, position):
            await self._store_and_score(
                interview_id,
                position,
                at,
                body["started_at"],
                text,
                segments,
                engine_name,
                language,
            )

    @asynccontextmanager
    async def _one_at_a_time(self, interview_id: int, position: int) -> AsyncIterator[None]:
        """Jobs of one question (asked again after Previous, scored again after its hidden
        tests ran) store and score one at a time here; across workers the database row lock
        does the same."""
        key = (interview_id, position)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def rescore(self, job: Job) -> None:
        """Score a stored answer again: its coding question's hidden tests ran after it was
        scored, and a judge that reads the code should see their result."""
        interview_id, position = int(job.body["interview"]), int(job.body["position"])
        async with self._one_at_a_time(interview_id, position):
            async with self.sessions() as session:
                answers, _ = await conduct.answers_and_scores(session, interview_id)
                question = await conduct.question_spec(session, interview_id, position)
            answer = answers.get(position)
            if answer is None or not answer.engine or question is None:
                return  # not stored yet: its own job scores it with the results there are
            language = str(job.body.get("language") or "en")
            await self._score(interview_id, position, answer.text, question, language, None)

    async def _store_and_score(
        self,
        interview_id: int,
        position: int,
        at: float,
        started_at: float,
        text: str,
        segments: list[dict[str, Any]],
        engine_name: str,
        language: str = "en",
    ) -> None:
        async def store(session: AsyncSession) -> str:
            answer = await conduct.save_answer(
                session,
                interview_id,
                position,
                text,
                segments,
                datetime.fromtimestamp(started_at, UTC),
                datetime.fromtimestamp(at, UTC),
                engine_name,
            )
            return answer.text

        stored, question = await self._store(store, interview_id, position)
        self.timings.to_transcript.append(time.time() - at)
        log.info(
            "stored the answer to interview %s question %s: %d words",
            interview_id,
            position,
            len(stored.split()),
        )
        await self.publish(interview_id, TranscriptUpdated(position, stored, True))
        if question is not None:
            await self._score(interview_id, position, stored, question, language, at)

    async def _score(
        self,
        interview_id: int,
        position: int,
        stored: str,
        question: Question,
        language: str,
        at: float | None,
    ) -> None:
        """Score the stored answer, store the score and tell the pages (`at`: when the
        recruiter moved on, for the delay; None when scored again later)."""
        code = ""
        if question.kind == "code":
            async with self.sessions() as session:
                code = await code_documents.judged_code(session, interview_id, position)
        spec = spec_of(question, language, code)
        scored = await self.score(spec, stored)

        async def store_score(session: AsyncSession) -> Verdict | None:
            correction = (
                None
                if is_non_answer(stored)
                else await calibration.for_interview(session, interview_id)
            )
            verdict = calibrated(scored, correction)
            row = await conduct.save_score(
                session,
                interview_id,
                position,
                verdict.score,
                verdict.rationale,
                verdict.covered,
                verdict.missing,
                verdict.follow_up,
                verdict.scorer,
                verdict.note,
                answer_text=stored,
                confidence=verdict.confidence,
                doubt=verdict.doubt,
                misconceptions=list(verdict.misconceptions),
            )
            return verdict if row is not None else None

        verdict, _ = await self._store(store_score, None, None)
        if verdict is None:  # the answer grew meanwhile; its own job scores it
            return
        if at is not None:
            self.timings.to_score.append(time.time() - at)
            SCORE_DELAY_SECONDS.observe(time.time() - at)
        log.info(
            "scored interview %s question %s: %s (%s)",
            interview_id,
            position,
            verdict.score,
            verdict.scorer,
        )
        await self.publish(
            interview_id,
            ScoreReady(
                position,
                verdict.score,
                verdict.rationale,
                list(verdict.covered),
                list(verdict.missing),
                verdict.follow_up,
                verdict.note,
                verdict.confidence,
                verdict.doubt,
                needs_check(verdict.confidence),
                list(verdict.misconceptions),
            ),
        )

    async def _store(
        self,
        write: Callable[[AsyncSession], Awaitable[T]],
        interview_id: int | None,
        position: int | None,
    ) -> tuple[T, Any]:
        """Run an upsert; retried once when a second run of the same job inserted first.
        Returns what `write` returned and, with an interview and position, that question (for
        scoring)."""
        for attempt in (1, 2):
            try:
                async with self.sessions.begin() as session:
                    result = await write(session)
                    if interview_id is None or position is None:
                        return result, None
                    return result, await conduct.question_spec(session, interview_id, position)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._speech.shutdown(wait=False, cancel_futures=True)
        self._scoring.shutdown(wait=False, cancel_futures=True)
