"""The speech engine, the scorer and the job work the settings choose (for `serve` and for
`p2p-interview worker` alike)."""

from __future__ import annotations

from pathlib import Path

from assistant.by_language import ScorerByLanguage
from assistant.llm import LLMJudge
from assistant.local import LocalScorer
from assistant.multilingual import MultilingualScorer
from assistant.scorer import Scorer
from bus.events import PageEvent, publish_event
from bus.pubsub import Bus
from media.s3 import S3Credentials, S3Location, S3Storage
from media.storage import LocalStorage, RecordingStorage
from pipeline.work import Work
from rooms.db import SessionMaker
from rooms.recordings import settle_left_segment
from service.settings import Settings
from transcription import engine as speech


def make_speech_engine(settings: Settings, language: str = "en") -> speech.Engine:
    """The transcription engine the settings choose, for interviews in `language`: English
    ones get WHISPER_MODEL (tiny.en unless set), others WHISPER_MODEL_MULTILINGUAL (Whisper
    base unless set)."""
    if settings.transcription_engine == "openai":
        model = settings.openai_transcribe_model
    elif language == "en":
        model = settings.whisper_model
    else:
        model = settings.whisper_model_multilingual
    return speech.make_engine(
        settings.transcription_engine,
        model=model,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        language=language,
        cache=Path(settings.model_cache_dir) if settings.model_cache_dir else None,
        beam_size=settings.whisper_beam,
    )


def make_scorer(settings: Settings) -> Scorer:
    """The local scorers (English, and multilingual for other languages), or the LLM judge
    falling back to them."""
    local = ScorerByLanguage(LocalScorer(), MultilingualScorer())
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
        lambda language: make_speech_engine(settings, language),
        make_scorer(settings),
        engine_name=settings.transcription_engine,
    )


def make_storage(settings: Settings, sessions: SessionMaker | None = None) -> RecordingStorage:
    """Recordings on local disk, or in the S3-compatible bucket of RECORDINGS_URL. With
    `sessions` (a node), spools left by a dead process are uploaded on start, those whose
    recording still exists (its row then gets the duration the file holds)."""
    if not settings.recordings_url:
        return LocalStorage(settings.recordings_dir)

    async def known(key: str, written_s: float) -> bool:
        assert sessions is not None
        async with sessions.begin() as session:
            return await settle_left_segment(session, key, written_s)

    return S3Storage(
        S3Location.parse(settings.recordings_url),
        settings.recordings_dir,
        S3Credentials(
            settings.s3_endpoint_url,
            settings.s3_region,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
        ),
        known=known if sessions is not None else None,
    )
