"""Typed keys for the application-wide objects the composition root puts on the app."""

from __future__ import annotations

from aiohttp import web

from bus.pubsub import Bus
from media.peer import MediaServer
from media.storage import RecordingStorage
from pipeline.answers import NodeAnswers
from pipeline.journal import RecordingJournal
from pipeline.moves import InterviewMoves
from rooms.db import SessionMaker
from service.settings import Settings
from signaling.hub import Hub
from web.mail import Mailer
from web.ratelimit import RateLimiter

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("db_sessions", SessionMaker)
HUB = web.AppKey("hub", Hub)
MAILER = web.AppKey("mailer", Mailer)
LIMITER = web.AppKey("rate_limiter", RateLimiter)
MEDIA = web.AppKey("media", MediaServer)
STORAGE = web.AppKey("recording_storage", RecordingStorage)
JOURNAL = web.AppKey("recording_journal", RecordingJournal)
ANSWERS = web.AppKey("node_answers", NodeAnswers)
MOVES = web.AppKey("interview_moves", InterviewMoves)
BUS = web.AppKey("bus", Bus)
