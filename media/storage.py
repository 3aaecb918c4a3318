"""Where recordings live: the interface, and a folder per interview on local disk (the
embedded default; media/s3.py keeps them in an S3-compatible bucket)."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

KEY = re.compile(r"interview-[0-9]{1,18}/(recruiter|candidate)-[0-9]{3,6}\.opus")
"""How the database names a segment (`Recording.path`), in every storage."""
READ_CHUNK = 64 * 1024


class BadKey(ValueError):
    """A stored reference that is not a segment's name (never touched on disk or in a bucket)."""


class StorageUnavailable(RuntimeError):
    """The place recordings are kept could not be reached or refused a request."""


def check_key(key: str) -> str:
    if not KEY.fullmatch(key):
        raise BadKey("not a recording segment's name")
    return key


class RecordingStorage(Protocol):
    """Segments are written to a local file while recorded; afterwards read, in byte ranges,
    from wherever the storage keeps them."""

    def segment_path(self, interview_id: int, role: str, segment: int) -> Path:
        """A local path to write a new segment to."""
        ...

    def relative(self, path: Path) -> str:
        """How the database refers to the segment (its key)."""
        ...

    def segment_changed(self, path: Path, closed: bool) -> None:
        """The recorder wrote more to `path` (or closed it); called on the event loop."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored segment's size in bytes; None when there is none."""
        ...

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """`length` bytes of the segment from `start`, in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove one segment (nothing happens if it is gone already)."""
        ...

    async def delete_interview(self, interview_id: int) -> None:
        """Remove every segment of an interview."""
        ...

    async def start(self) -> None:
        """On a node's start: store what an earlier run left unfinished."""
        ...

    async def close(self) -> None:
        """Finish what is in flight."""
        ...


class LocalStorage:
    """`<root>/interview-<id>/<role>-<segment>.opus`; folders 0700, files 0600 (oggopus)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def segment_path(self, interview_id: int, role: str, segment: int) -> Path:
        folder = self.root / f"interview-{interview_id}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for private in (self.root, folder):
            private.chmod(0o700)
        return folder / f"{role}-{segment:03d}.opus"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def resolve(self, relative: str) -> Path:
        """The local file of a key (refused when the key is not a segment's name)."""
        return self.root / check_key(relative)

    def segment_changed(self, path: Path, closed: bool) -> None:
        return None  # the file already is where it stays

    async def size(self, key: str) -> int | None:
        try:
            return self.resolve(key).stat().st_size
        except FileNotFoundError:
            return None

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        path = self.resolve(key)
        with path.open("rb") as file:
            file.seek(start)
            while length > 0:
                chunk = await asyncio.to_thread(file.read, min(READ_CHUNK, length))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        self.resolve(key).unlink(missing_ok=True)

    async def delete_interview(self, interview_id: int) -> None:
        shutil.rmtree(self.root / f"interview-{interview_id}", ignore_errors=True)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
