"""The pages' JavaScript modules: a page's head preloads every module its entry script imports.

Without it the browser finds a module's imports only once it has fetched that module, one level
of the import graph after another; with `<link rel="modulepreload">` for all of them it fetches
them at once. The graph is read from the files' static `import … from "…"` lines (dynamic
`import()`, such as the code editor loaded later, is left out on purpose).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
_IMPORT = re.compile(r'^import\s[^;"]*?(?:from\s*)?"(\./[\w.-]+\.js|/static/[\w/.-]+\.js)"', re.M)


def _path_of(url: str, importer: Path) -> Path:
    if url.startswith("/static/"):
        return STATIC / url.removeprefix("/static/")
    return (importer.parent / url).resolve()


def _url_of(path: Path) -> str:
    return "/static/" + path.relative_to(STATIC).as_posix()


@functools.cache
def module_preloads(*entries: str) -> tuple[str, ...]:
    """The URLs of every module the `static/js/<entry>` scripts import, directly or not."""
    starts = [STATIC / "js" / entry for entry in entries]
    found: dict[Path, None] = {}
    todo = list(starts)
    while todo:
        path = todo.pop(0)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue  # a missing module: the browser reports it; the page still renders
        for match in _IMPORT.finditer(text):
            imported = _path_of(match.group(1), path)
            if imported not in starts and imported not in found and imported.is_relative_to(STATIC):
                found[imported] = None
                todo.append(imported)
    return tuple(_url_of(path) for path in found)
