"""Typed keys for the application-wide objects the composition root puts on the app."""

from __future__ import annotations

from aiohttp import web

from media.peer import MediaServer
from media.storage import RecordingStorage
from rooms.db import SessionMaker
from signaling.hub import Hub
from web.answers import LiveAnswers
from web.mail import Mailer
from web.ratelimit import RateLimiter
from web.recordings import RecordingJournal
from web.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("db_sessions", SessionMaker)
HUB = web.AppKey("hub", Hub)
MAILER = web.AppKey("mailer", Mailer)
LIMITER = web.AppKey("rate_limiter", RateLimiter)
MEDIA = web.AppKey("media", MediaServer)
STORAGE = web.AppKey("recording_storage", RecordingStorage)
JOURNAL = web.AppKey("recording_journal", RecordingJournal)
LIVE = web.AppKey("live_answers", LiveAnswers)
BACKGROUND = web.AppKey("background_tasks", set)
