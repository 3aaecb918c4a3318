"""Log lines as text or as JSON (`LOG_FORMAT=json`), each with the interview whose work it is
part of: a context variable set where that work starts (a page joining its call, a request
under /interviews/<id>, a job), which asyncio carries into every task started from there."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

INTERVIEW: ContextVar[int | None] = ContextVar("interview", default=None)
"""The interview the current work belongs to (None outside any)."""


def working_on(interview_id: int | None) -> None:
    """Mark the rest of this task (and the tasks it starts) as work of `interview_id`."""
    INTERVIEW.set(interview_id)


class InterviewField(logging.Filter):
    """Puts the current interview on every record, as `interview`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.interview = INTERVIEW.get()
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, interview, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        interview = getattr(record, "interview", None)
        if interview is not None:
            line["interview"] = interview
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextLines(logging.Formatter):
    """The plain format, with `[interview N]` where a line belongs to one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        interview = getattr(record, "interview", None)
        return text if interview is None else f"{text} [interview {interview}]"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged (not the one at start-up, which a
    host such as a test runner may have replaced and closed since)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str, form: str) -> None:
    """The root logger's handler (stderr), in `form` (text or json), counting errors. Calling it
    again replaces what an earlier call installed, and nothing else."""
    from telemetry.metrics import ErrorCounter

    handler = _Stderr()
    handler.setFormatter(JsonLines() if form == "json" else TextLines())
    handler.addFilter(InterviewField())
    counter = ErrorCounter()
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_p2pi", False):
            root.removeHandler(old)
    # A host that already handles the root's lines (a test runner calling a command) keeps
    # doing so: only the error counter is added then.
    ours: tuple[logging.Handler, ...] = (counter,) if root.handlers else (handler, counter)
    installed: logging.Handler
    for installed in ours:
        setattr(installed, "_p2pi", True)  # noqa: B010 (a mark on a foreign class)
        root.addHandler(installed)
    root.setLevel(level)
