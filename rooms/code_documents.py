"""The shared code of each interview: one Yjs document (kept with pycrdt) holding a text per
coding question (`q<position>`) and the recruiter's scratch pad (`q0`), rebuilt from its update log in the database, so it survives a
reload, a reconnect to another node and a restart."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pycrdt import Doc, Text
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.code_tasks import CodeTask
from rooms.db import SessionMaker
from rooms.models import CodeEdit, CodeResult, InterviewQuestion, Question, utcnow

log = logging.getLogger(__name__)

MAX_UPDATE_BYTES = 24 * 1024
"""One update from a page (a paste of a few hundred lines fits)."""
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
"""An interview's whole update log; past it edits are refused (a runaway script, not typing)."""
SCRATCH = 0
"""The scratch pad's position: its text is `q0`, its last run a CodeResult at position 0."""
SEED_CLIENT_BASE = 1_000_000
"""Client ids of the starter code's insertions: `SEED_CLIENT_BASE + position`."""


class CodeRefused(Exception):
    """An update the server will not take; the message says why, for the page."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def text_name(position: int) -> str:
    """The name of question `position`'s text in the interview's document."""
    return f"q{position}"


def seed_update(position: int, starter: str) -> bytes:
    """The insertion of the starter code, the same bytes wherever and however often it is made
    (one fixed client id and clock), so two nodes seeding at once give one copy."""
    doc: Doc[Any] = Doc(client_id=SEED_CLIENT_BASE + position)
    doc.get(text_name(position), type=Text).insert(0, starter)
    return doc.get_update()


def decode_update(value: str) -> bytes:
    """A page's base64 update, or CodeRefused saying what is wrong with it."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CodeRefused("bad_update", "The code update is not base64.") from None
    if not raw:
        raise CodeRefused("bad_update", "The code update is empty.")
    if len(raw) > MAX_UPDATE_BYTES:
        raise CodeRefused(
            "too_large", f"A code update is limited to {MAX_UPDATE_BYTES // 1024} KiB."
        )
    return raw


def encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass
class _Loaded:
    doc: Doc[Any]
    size: int
    """Bytes in the stored log (and seeds), counted against MAX_DOCUMENT_BYTES."""


async def code_tasks(session: AsyncSession, interview_id: int) -> dict[int, CodeTask]:
    """The coding questions of an interview, by position."""
    rows = await session.execute(
        select(InterviewQuestion.position, Question.code)
        .join(Question, Question.id == InterviewQuestion.question_id)
        .where(InterviewQuestion.interview_id == interview_id, Question.kind == "code")
    )
    return {position: CodeTask.from_dict(code) for position, code in rows if code}


async def seeds(session: AsyncSession, interview_id: int) -> dict[int, bytes]:
    """The starter-code insertion of each coding question, by position."""
    tasks = await code_tasks(session, interview_id)
    return {position: seed_update(position, task.starter) for position, task in tasks.items()}


async def edit_log(session: AsyncSession, interview_id: int) -> list[CodeEdit]:
    """Every stored update of the interview's code, oldest first."""
    rows = await session.scalars(
        select(CodeEdit).where(CodeEdit.interview_id == interview_id).order_by(CodeEdit.id)
    )
    return list(rows)


def text_at(updates: list[bytes], position: int) -> str:
    """Question `position`'s code after applying `updates` in order (the replay)."""
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get(text_name(position), type=Text))


class CodeDocuments:
    """This node's open documents, one per interview with pages here, backed by the log."""

    def __init__(self, sessions: SessionMaker) -> None:
        self.sessions = sessions
        self._docs: dict[int, _Loaded] = {}
        self._pending: list[CodeEdit] = []
        self._writer: asyncio.Task[None] | None = None

    async def _load(self, interview_id: int) -> _Loaded:
        loaded = self._docs.get(interview_id)
        if loaded is not None:
            return loaded
        await self.flush()
        async with self.sessions() as session:
            seeded = await seeds(session, interview_id)
            stored = await edit_log(session, interview_id)
        doc: Doc[Any] = Doc()
        size = 0
        for update in [*seeded.values(), *(edit.update for edit in stored)]:
            doc.apply_update(update)
            size += len(update)
        # Another coroutine may have loaded it during the awaits: keep the first.
        return self._docs.setdefault(interview_id, _Loaded(doc, size))

    async def open(self, interview_id: int) -> None:
        """Load the interview's document on this node (from the log) if it is not yet."""
        await self._load(interview_id)

    async def sync(self, interview_id: int, state_vector: str) -> dict[str, str]:
        """What a page whose document is at `state_vector` lacks, and the server's own state
        vector (the page answers with what the server lacks)."""
        try:
            vector = base64.b64decode(state_vector, validate=True)
        except (binascii.Error, ValueError):
            raise CodeRefused("bad_update", "The state vector is not base64.") from None
        loaded = await self._load(interview_id)
        try:
            missing = loaded.doc.get_update(vector) if vector else loaded.doc.get_update()
        except ValueError:
            raise CodeRefused("bad_update", "The state vector is not a Yjs state vector.") from None
        return {"update": encode(missing), "state": encode(loaded.doc.get_state())}

    async def apply(self, interview_id: int, update: bytes) -> None:
        """Take a page's update into this node's document (CodeRefused: not a valid one).
        The caller relays it, then `store`s it: the other page need not wait for the disk."""
        loaded = await self._load(interview_id)
        if loaded.size + len(update) > MAX_DOCUMENT_BYTES:
            raise CodeRefused(
                "too_large", "The shared code has reached its size limit; no more edits are kept."
            )
        try:
            loaded.doc.apply_update(update)
        except ValueError:
            raise CodeRefused("bad_update", "The code update is not a Yjs update.") from None
        loaded.size += len(update)

    def store(self, interview_id: int, role: str, update: bytes) -> None:
        """Append an applied update to the interview's log: written in order by one writer
        task, in batches, so that a page's next edit does not wait for the disk."""
        self._pending.append(CodeEdit(interview_id=interview_id, role=role, update=update))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="code-edits-writer")

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.sessions.begin() as session:
                    session.add_all(batch)
            except Exception as exc:
                # The pages still hold these edits and send them again when they next sync.
                log.error("could not store %d code edits: %s", len(batch), type(exc).__name__)

    async def flush(self) -> None:
        """Wait until every edit taken so far is in the database."""
        while self._writer is not None and not self._writer.done():
            await self._writer

    def applied_elsewhere(self, interview_id: int, update: bytes) -> None:
        """An update another node took (it is in the log already): keep this node's copy in
        step, if it has one."""
        loaded = self._docs.get(interview_id)
        if loaded is None:
            return
        try:
            loaded.doc.apply_update(update)
            loaded.size += len(update)
        except ValueError:
            self._docs.pop(interview_id, None)  # rebuilt from the log on next use

    def text(self, interview_id: int, position: int) -> str | None:
        """Question `position`'s code on this node now (None: the document is not open)."""
        loaded = self._docs.get(interview_id)
        if loaded is None:
            return None
        return str(loaded.doc.get(text_name(position), type=Text))

    def close(self, interview_id: int) -> None:
        """No page of the interview is on this node any more."""
        self._docs.pop(interview_id, None)


async def save_result(
    session: AsyncSession, interview_id: int, position: int, **parts: dict[str, Any]
) -> CodeResult:
    """Store the last visible run (`visible=`) or hidden-test result (`hidden=`) of a question."""
    row = await session.scalar(
        select(CodeResult).where(
            CodeResult.interview_id == interview_id, CodeResult.position == position
        )
    )
    if row is None:
        row = CodeResult(interview_id=interview_id, position=position)
        session.add(row)
    stamped = {key: {**value, "at": utcnow().isoformat()} for key, value in parts.items()}
    if "visible" in stamped:
        row.visible = stamped["visible"]
    if "hidden" in stamped:
        row.hidden = stamped["hidden"]
    row.updated_at = utcnow()
    await session.flush()
    return row


async def results_of(session: AsyncSession, interview_id: int) -> dict[int, CodeResult]:
    rows = await session.scalars(select(CodeResult).where(CodeResult.interview_id == interview_id))
    return {row.position: row for row in rows}


async def _final(
    session: AsyncSession, interview_id: int, tasks: dict[int, CodeTask]
) -> tuple[Doc[Any], list[CodeEdit]]:
    """The interview's document as it ended up, and its edit log."""
    log = await edit_log(session, interview_id)
    doc: Doc[Any] = Doc()
    for position, task in tasks.items():
        doc.apply_update(seed_update(position, task.starter))
    for edit in log:
        doc.apply_update(edit.update)
    return doc, log


async def code_summary(session: AsyncSession, interview_id: int) -> dict[int, dict[str, Any]]:
    """Each coding question's final code, the candidate's last run and the hidden tests'
    result (the results page, the JSON and PDF exports)."""
    tasks = await code_tasks(session, interview_id)
    if not tasks:
        return {}
    doc, log = await _final(session, interview_id, tasks)
    results = await results_of(session, interview_id)
    summary = {}
    for position, task in tasks.items():
        result = results.get(position)
        summary[position] = {
            "language": task.language,
            "function": task.function,
            "final": str(doc.get(text_name(position), type=Text)),
            "edits": len(log),
            "visible": result.visible if result else None,
            "hidden": result.hidden if result else None,
        }
    return summary


async def scratch_summary(
    session: AsyncSession, interview_id: int, language: str | None
) -> dict[str, Any] | None:
    """The scratch pad's final code and the candidate's last run in it (None: never opened),
    `language` being the one it was last open in."""
    if language is None:
        return None
    doc, log = await _final(session, interview_id, await code_tasks(session, interview_id))
    result = (await results_of(session, interview_id)).get(SCRATCH)
    return {
        "language": language,
        "final": str(doc.get(text_name(SCRATCH), type=Text)),
        "edits": len(log),
        "visible": result.visible if result else None,
    }


async def judged_code(session: AsyncSession, interview_id: int, position: int) -> str:
    """For a judge that reads code: the candidate's final code of this coding question and its
    test results so far, as text ("" for a spoken question)."""
    entry = (await code_summary(session, interview_id)).get(position)
    if entry is None:
        return ""
    lines = [f"{entry['language']}, function {entry['function']}:", entry["final"]]
    for name in ("visible", "hidden"):
        result = entry[name]
        if result:
            tests = result.get("tests") or []
            passed = result.get("passed", sum(1 for t in tests if t.get("passed")))
            counts = f"{passed}/{result.get('total', len(tests))} passed"
            lines.append(f"{name} tests: {result.get('status', '')}, {counts}")
            for failing in (result.get("failing") or [])[:5]:
                lines.append(f"  failing: {json.dumps(failing, ensure_ascii=False)[:300]}")
        else:
            lines.append(f"{name} tests: not run")
    return "\n".join(lines)[:12_000]


async def replay(
    session: AsyncSession, interview_id: int, origin: datetime | None
) -> dict[str, Any]:
    """What the results page's scrubber plays: the starter insertions, then every update with
    its time in seconds from `origin` (the interview's start)."""
    seeded = await seeds(session, interview_id)
    log = await edit_log(session, interview_id)
    start = origin or (log[0].at if log else utcnow())
    return {
        "origin_ts": start.timestamp(),
        "seeds": {str(position): encode(update) for position, update in seeded.items()},
        "edits": [
            {"t": round((e.at - start).total_seconds(), 3), "role": e.role, "u": encode(e.update)}
            for e in log
        ],
    }
