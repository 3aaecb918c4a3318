"""The speech engine, the scorer and the job work the settings choose (for `serve` and for
`p2p-interview worker` alike)."""

from __future__ import annotations

from assistant.llm import LLMJudge
from assistant.local import LocalScorer
from assistant.scorer import Scorer
from bus.events import PageEvent, publish_event
from bus.pubsub import Bus
from pipeline.work import Work
from rooms.db import SessionMaker
from service.settings import Settings
from transcription import engine as speech


def make_speech_engine(settings: Settings) -> speech.Engine:
    """The transcription engine the settings choose."""
    return speech.make_engine(
        settings.transcription_engine,
        model=settings.openai_transcribe_model
        if settings.transcription_engine == "openai"
        else settings.whisper_model,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
    )


def make_scorer(settings: Settings) -> Scorer:
    """The local scorer, or the LLM judge falling back to it."""
    local = LocalScorer()
    if settings.scorer == "llm":
        return LLMJudge(
            settings.llm_model,
            fallback=local,
            base_url=settings.openai_base_url or None,
            api_key=settings.openai_api_key,
            samples=settings.llm_samples,
        )
    return local


def make_work(settings: Settings, sessions: SessionMaker, bus: Bus) -> Work:
    """What runs speech jobs, in `serve` or in a worker; results go to the room over `bus`."""

    async def publish(interview_id: int, event: PageEvent) -> None:
        await publish_event(bus, interview_id, event, roles=["recruiter"])

    return Work(
        sessions,
        publish,
        lambda: make_speech_engine(settings),
        make_scorer(settings),
        engine_name=settings.transcription_engine,
    )
