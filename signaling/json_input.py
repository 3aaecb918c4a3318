"""JSON from pages: the one parser for the signaling WebSocket and every JSON endpoint.

`json.loads` alone is not enough for input anyone can send: `[` × 30,000 raises RecursionError
(not a ValueError), a number of 5,000 digits raises ValueError only by luck of a limit, and
`NaN` / `Infinity` are accepted although they are not JSON. Here every one of these is a
`JsonRefused` with a sentence for the page, and size and nesting are bounded.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
"""Arrays and objects inside each other; the deepest real message (an ICE candidate) has 2."""


class JsonRefused(ValueError):
    """Input that is not acceptable JSON; the message says why, for the person or page.
    `invalid` is False when it was JSON but too large or too deep."""

    def __init__(self, message: str, invalid: bool = True) -> None:
        super().__init__(message)
        self.invalid = invalid


def _no_constants(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON value.")


def _too_deep(max_depth: int) -> JsonRefused:
    return JsonRefused(f"The JSON is nested more than {max_depth} levels deep.", invalid=False)


def loads(raw: str | bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in `raw`, or JsonRefused: too large, not UTF-8, not JSON, or too deep."""
    if len(raw) > max_bytes:
        raise JsonRefused(f"The JSON is over {max_bytes} bytes.", invalid=False)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_no_constants)
    except JsonRefused:
        raise
    except RecursionError:
        raise _too_deep(max_depth) from None
    except (ValueError, UnicodeDecodeError):
        raise JsonRefused("The message is not valid JSON.") from None
    if _depth(value) > max_depth:
        raise _too_deep(max_depth)
    return value


def _depth(value: Any) -> int:
    """Nesting depth without recursion (the parser's own limit already bounds it)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return deepest
