"""Where recordings live: a folder per interview on local disk (object storage can come later)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol


class RecordingStorage(Protocol):
    def segment_path(self, interview_id: int, role: str, segment: int) -> Path:
        """A local path to write a new segment to."""
        ...

    def relative(self, path: Path) -> str:
        """How the database refers to the file."""
        ...

    def resolve(self, relative: str) -> Path:
        """The local file for a stored reference."""
        ...

    def delete_interview(self, interview_id: int) -> None: ...


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
        return str(path.relative_to(self.root))

    def resolve(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("recording path outside the storage folder")
        return path

    def delete_interview(self, interview_id: int) -> None:
        shutil.rmtree(self.root / f"interview-{interview_id}", ignore_errors=True)
